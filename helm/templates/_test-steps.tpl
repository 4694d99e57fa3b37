{{/* The `helm test` steps: exactly the commands CI runs locally (tests/helm). */}}

{{- define "tritonkit.test.checkContainer" -}}
- name: check
  image: {{ .image }}
  imagePullPolicy: {{ .pullPolicy }}
  # Served results vs the PyTorch reference, over HTTP and gRPC: the command CI runs locally.
  command:
    - tritonkit
    - check
    - --url
    - {{ .http | quote }}
    - --grpc-url
    - {{ .grpc | quote }}
    - --name
    - {{ .name | quote }}
    - --min-cosine
    - {{ .check.minCosine | quote }}
    - --max-prob-diff
    - {{ .check.maxProbDiff | quote }}
    {{- if .check.texts }}
    - --texts
    - /etc/tritonkit/check-texts.jsonl
    {{- end }}
    - {{ .modelPath | quote }}
{{- end -}}
{{- define "tritonkit.test.loadtestContainer" -}}
- name: loadtest
  image: {{ .image }}
  imagePullPolicy: {{ .pullPolicy }}
  # A short load test; an SLO breach exits non-zero and fails `helm test`.
  command:
    - tritonkit
    - loadtest
    - --url
    - {{ .http | quote }}
    - --name
    - {{ .name | quote }}
    - --protocol
    - http
    - --users
    - {{ .loadtest.users | quote }}
    - --duration
    - {{ .loadtest.duration | quote }}
    - --slo
    - {{ printf "p95_ms=%v" .loadtest.p95Ms | quote }}
    - --slo
    - {{ printf "error_rate=%v" .loadtest.errorRate | quote }}
    - --output
    - /tmp/loadtest
    {{- if ne (int .metricsPort) 8002 }}
    - --metrics-url
    - {{ .metrics | quote }}
    {{- end }}
{{- end -}}
