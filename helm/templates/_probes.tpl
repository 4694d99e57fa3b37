{{/* Health probes of tritonserver.

/v2/health/ready answers 200 while a crashed Python-backend stub fails every request (measured
on Triton 2.51: kill -9 of the tokenizer's stub -> ready 200, model ready 200, every inference
500 "Stub process ... is not healthy"; issue 10 item 2). So the readiness probe (type:
inference) runs one tiny KServe v2 inference of the ensemble on 127.0.0.1 inside the container
with the image's python3 and the standard library only (NGC Triton images ship python3 for the
Python backend; tritonclient is not there). The startup probe stays on /v2/health/ready (models
loaded) and liveness on /v2/health/live by default: a liveness check that depends on queueing
would restart pods exactly when they are busiest. The request needs no admin key: inference is
never a restricted category. */}}

{{- define "tritonkit.inferenceProbeScript" -}}
{{ .Files.Get "files/inference_probe.py" }}
{{- end -}}

{{/* One probe: (dict "root" $ "probe" .Values.probes.readiness "type" "inference"|"http" "path" "/v2/health/ready"). */}}
{{- define "tritonkit.probe" -}}
{{- if eq .type "inference" -}}
exec:
  command:
    - python3
    - -c
    - {{ include "tritonkit.inferenceProbeScript" .root | quote }}
    - {{ printf "127.0.0.1:%v" .root.Values.ports.http | quote }}
    - {{ .root.Values.modelName | quote }}
    - {{ sub .probe.timeoutSeconds 1 | max 1 | quote }}
{{- else -}}
httpGet:
  path: {{ .path }}
  port: http
{{- end }}
periodSeconds: {{ .probe.periodSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
{{- end -}}
