{{/* PromQL over Triton's per-model counters (docs/user_guide/metrics.md), for this release's
pods as a Prometheus Operator ServiceMonitor labels them (namespace, service, pod).

Queue time per client request: the queue time of every model of the ensemble (tokenizer and
ONNX/TensorRT model; the ensemble's own is ~0) over the ensemble's successful requests, which
count each client request once. Summing every model's requests instead counted each client
request three times (ensemble, tokenizer, model: issue 12, defect 7). Measured on Triton 2.51:
200 requests -> nv_inference_request_success 200 for each of the three models; queue time
ensemble 295 us, tokenizer 181806 us, model 617899 us in total. Checked in a real Prometheus
by tests/helm/test_chart_prometheus.py. */}}

{{- define "tritonkit.promSelector" -}}
namespace="{{ .Release.Namespace }}", service="{{ include "tritonkit.fullname" . }}"
{{- end -}}

{{- define "tritonkit.promModels" -}}
{{- $name := .Values.modelName | replace "." "\\\\." -}}
model=~"{{ $name }}|{{ $name }}_tokenizer|{{ $name }}_onnx|{{ $name }}_trt"
{{- end -}}

{{/* (dict "root" $ "window" "1m") */}}
{{- define "tritonkit.queueTimePerRequest" -}}
{{- $sel := include "tritonkit.promSelector" .root -}}
sum by (namespace, pod) (rate(nv_inference_queue_duration_us{ {{- $sel }}, {{ include "tritonkit.promModels" .root }}}[{{ .window }}]))
/ clamp_min(sum by (namespace, pod) (rate(nv_inference_request_success{ {{- $sel }}, model="{{ .root.Values.modelName }}"}[{{ .window }}])), 1e-9)
{{- end -}}

{{- define "tritonkit.errorRatio" -}}
{{- $sel := include "tritonkit.promSelector" .root -}}
{{- $model := printf "model=\"%s\"" .root.Values.modelName -}}
sum(rate(nv_inference_request_failure{ {{- $sel }}, {{ $model }}}[{{ .window }}]))
/ clamp_min(sum(rate(nv_inference_request_success{ {{- $sel }}, {{ $model }}}[{{ .window }}])) + sum(rate(nv_inference_request_failure{ {{- $sel }}, {{ $model }}}[{{ .window }}])), 1e-9)
{{- end -}}
