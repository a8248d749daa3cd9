{{- define "logpipe.name" -}}{{ .Release.Name }}{{- end -}}
{{- define "logpipe.labels" -}}
app.kubernetes.io/name: logpipe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "logpipe.selector" -}}
app.kubernetes.io/name: logpipe
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "logpipe.pipeline" -}}
input {
  file {
    path => "/var/log/containers/*.log"
    format => "{{ .Values.containerRuntime }}"
    {{- if .Values.multilinePreset }}
    multiline => { preset => "{{ .Values.multilinePreset }}" flush_interval => "2s" }
    {{- end }}
    start_position => "beginning"
    sincedb_path => "/var/lib/logpipe/containers.pos"
    rotate_wait => "30s"
    tag => "kube"
  }
}

filter {
  kubernetes_metadata {
    ecs_compatibility => "{{ .Values.kubernetesMetadata.ecsCompatibility }}"
    deleted_pod_ttl => "{{ .Values.kubernetesMetadata.deletedPodTTL }}"
    {{- with .Values.kubernetesMetadata.annotationMatch }}
    annotation_match => [{{ range $i, $m := . }}{{ if $i }}, {{ end }}{{ $m | quote }}{{ end }}]
    {{- end }}
  }
}

output {
  {{- with .Values.outputs.elasticsearch }}
  {{- if .enabled }}
  elasticsearch {
    hosts => [{{ range $i, $h := .hosts }}{{ if $i }}, {{ end }}{{ $h | quote }}{{ end }}]
    index => {{ .index | quote }}
    buffer => "file"
    buffer_path => "/var/lib/logpipe/buffer/es"
    flush_interval => "1s"
    retry_forever => true
    dead_letter_path => "/var/lib/logpipe/es-dead-letters.jsonl"
  }
  {{- end }}
  {{- end }}
  {{- with .Values.outputs.forward }}
  {{- if .enabled }}
  forward {
    host => {{ .host | quote }}
    port => {{ .port }}
    buffer => "file"
    buffer_path => "/var/lib/logpipe/buffer/forward"
    retry_forever => true
  }
  {{- end }}
  {{- end }}
}
{{- end -}}
