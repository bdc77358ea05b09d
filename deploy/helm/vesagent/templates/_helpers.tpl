{{/* Names, labels, image and secrets shared by every template (OOM's common helpers, inlined
     so the chart stands alone). */}}

{{- define "vesagent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vesagent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "vesagent.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "vesagent.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels: stable across upgrades (never add the chart version here). */}}
{{- define "vesagent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vesagent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vesagent.labels" -}}
{{ include "vesagent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: vesagent
app.kubernetes.io/part-of: onap
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vesagent.image" -}}
{{- $repo := default .Values.global.repository .Values.repositoryOverride -}}
{{- if $repo -}}{{ printf "%s/%s" $repo .Values.image }}{{- else -}}{{ .Values.image }}{{- end -}}
{{- end -}}

{{- define "vesagent.pullPolicy" -}}
{{- default .Values.global.pullPolicy .Values.pullPolicy -}}
{{- end -}}

{{- define "vesagent.postgresql" -}}
{{- $mode := .Values.state.mode -}}
{{- if not (has $mode (list "sqlite" "postgresql")) -}}
{{- fail (printf "state.mode: %q is not one of sqlite, postgresql" $mode) -}}
{{- end -}}
{{- if eq $mode "postgresql" -}}true{{- end -}}
{{- end -}}

{{/* The secrets entry with uid .uid (dict "root" $ "uid" "aai-creds"), its strings rendered
     with tpl as OOM's common chart does, as YAML (read it back with fromYaml). */}}
{{- define "vesagent.secretEntry" -}}
{{- $uid := .uid -}}
{{- $root := .root -}}
{{- range $root.Values.secrets -}}
{{- if eq .uid $uid -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- if kindIs "string" $v -}}
{{- $_ := set $out $k (tpl $v $root) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of the Secret behind uid: the external one, else the one the chart makes. */}}
{{- define "vesagent.secretName" -}}
{{- $entry := include "vesagent.secretEntry" . | fromYaml -}}
{{- if not $entry -}}{{- fail (printf "secrets: no entry with uid %q" .uid) -}}{{- end -}}
{{- if $entry.externalSecret -}}
{{- $entry.externalSecret -}}
{{- else -}}
{{- printf "%s-%s" (include "vesagent.fullname" .root) .uid | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* True when the optional secret uid is in use (an external Secret, or a login/value). */}}
{{- define "vesagent.secretUsed" -}}
{{- $entry := include "vesagent.secretEntry" . | fromYaml -}}
{{- if or $entry.externalSecret $entry.login $entry.value -}}true{{- end -}}
{{- end -}}

{{- define "vesagent.peers" -}}
{{- range . }}
- to:
  {{- if .namespace }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .namespace | quote }}
  {{- else if .cidr }}
    - ipBlock:
        cidr: {{ .cidr | quote }}
        {{- with .except }}
        except: {{ toYaml . | nindent 10 }}
        {{- end }}
  {{- else }}
  {{- fail "networkPolicy.egress: each peer needs a namespace or a cidr" }}
  {{- end }}
  ports:
  {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}
