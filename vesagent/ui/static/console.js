// The console's own script (no inline scripts: the Content-Security-Policy forbids them).
// The editor: line numbers beside the textarea, problem lines marked in red, a click on a
// problem selects its line. Everything else is htmx, driven by attributes in the templates.
(function () {
  "use strict";

  function problemLines() {
    var marked = {};
    document.querySelectorAll("#problems li[data-line]").forEach(function (li) {
      var n = parseInt(li.getAttribute("data-line"), 10);
      if (n) { marked[n] = li.classList.contains("problem") ? "bad" : (marked[n] || "warn"); }
    });
    return marked;
  }

  function renderGutter() {
    var area = document.getElementById("config");
    var gutter = document.getElementById("gutter");
    if (!area || !gutter) { return; }
    var count = area.value.split("\n").length;
    var marked = problemLines();
    gutter.textContent = "";
    for (var i = 1; i <= count; i++) {
      var span = document.createElement("span");
      span.textContent = String(i);
      if (marked[i]) { span.className = "mark-" + marked[i]; span.id = "gutter-line-" + i; }
      gutter.appendChild(span);
      gutter.appendChild(document.createTextNode("\n"));
    }
    gutter.scrollTop = area.scrollTop;
  }

  function selectLine(n) {
    var area = document.getElementById("config");
    if (!area) { return; }
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
    var end = start + (lines[n - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (n - 4) * lineHeight);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var area = document.getElementById("config");
    if (!area) { return; }
    renderGutter();
    area.addEventListener("input", renderGutter);
    area.addEventListener("scroll", function () {
      document.getElementById("gutter").scrollTop = area.scrollTop;
    });
    area.addEventListener("keydown", function (event) {
      if (event.key === "Tab") {  // indent instead of leaving the editor
        event.preventDefault();
        var s = area.selectionStart;
        area.setRangeText("  ", s, area.selectionEnd, "end");
        area.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
    document.addEventListener("click", function (event) {
      var li = event.target.closest && event.target.closest("#problems li[data-line]");
      if (li && li.getAttribute("data-line")) { selectLine(parseInt(li.getAttribute("data-line"), 10)); }
    });
    document.body.addEventListener("htmx:afterSwap", renderGutter);
  });
})();
