"""``make bench``: vesagent's scale and speed figures, each beside a baseline from the same run.

Everything runs on 127.0.0.1 against the simulators in ``vesagent.sim``; every loop is bounded
and the whole run stays under five minutes on two cores. ``python -m vesagent.bench`` prints
the table and writes ``bench-results.json``; ``--quick`` runs small sizes, ``--profile``
prints cProfile's top entries for the in-process figures.
"""
