{{/* Names, labels, images and the pieces every pod shares. Helpers carry the chart's prefix. */}}

{{- define "tritonkit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tritonkit.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tritonkit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tritonkit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tritonkit
{{- end -}}

{{- define "tritonkit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tritonkit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The tritonserver pods: what the Service, PDB, spread constraints and ServiceMonitor select. */}}
{{- define "tritonkit.serverSelectorLabels" -}}
{{ include "tritonkit.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "tritonkit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tritonkit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag|@digest] */}}
{{- define "tritonkit.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{- define "tritonkit.tritonImage" -}}
{{- include "tritonkit.imageRef" .Values.image -}}
{{- end -}}

{{- define "tritonkit.tritonkitImage" -}}
{{- include "tritonkit.imageRef" .Values.tritonkitImage -}}
{{- end -}}

{{/* The repository folder (or URL) tritonserver reads. */}}
{{- define "tritonkit.repositoryPath" -}}
{{- $source := .Values.modelRepository.source -}}
{{- if eq $source "generate" -}}
/workspace/repository
{{- else if eq $source "pvc" -}}
/models
{{- else if eq $source "objectStorage" -}}
{{- .Values.modelRepository.objectStorage.url -}}
{{- else -}}
{{- .Values.modelRepository.image.path -}}
{{- end -}}
{{- end -}}

{{/* gs, s3 or as: the scheme of the object-storage URL. */}}
{{- define "tritonkit.objectScheme" -}}
{{- regexReplaceAll "^([a-z0-9]+)://.*$" .Values.modelRepository.objectStorage.url "${1}" -}}
{{- end -}}

{{/* Where the tritonkit image keeps `tokenizers` built for the Triton image's Python (see its Dockerfile). */}}
{{- define "tritonkit.bundledPythonPath" -}}
/opt/tritonkit/triton-python
{{- end -}}

{{/* The spec the generate init container reads: the user's keys plus what the chart decides. */}}
{{- define "tritonkit.spec" -}}
{{- $spec := deepCopy .Values.modelRepository.generate.spec -}}
{{- $_ := set $spec "name" .Values.modelName -}}
{{- $_ := set $spec "model" .Values.modelSource.path -}}
{{- $_ := set $spec "output" (include "tritonkit.repositoryPath" .) -}}
{{- $_ := set $spec "device" (ternary "gpu" "cpu" .Values.gpu.enabled) -}}
{{- $_ := set $spec "triton_image" (include "tritonkit.tritonImage" .) -}}
{{- toYaml $spec -}}
{{- end -}}

{{/* Volumes for the Hugging Face model folder, when it comes from a PVC. */}}
{{- define "tritonkit.modelSourceVolume" -}}
{{- if .Values.modelSource.pvc.claimName -}}
- name: model-source
  persistentVolumeClaim:
    claimName: {{ .Values.modelSource.pvc.claimName }}
    readOnly: true
{{- end }}
{{- end -}}

{{- define "tritonkit.modelSourceMount" -}}
{{- if .Values.modelSource.pvc.claimName -}}
- name: model-source
  mountPath: {{ .Values.modelSource.path }}
  readOnly: true
  {{- with .Values.modelSource.pvc.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Environment of every tritonkit container: writable home on /tmp, no hub access. */}}
{{- define "tritonkit.tritonkitEnv" -}}
- name: HOME
  value: /tmp
- name: TRITONKIT_HOME
  value: /tmp/tritonkit
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: HF_HUB_OFFLINE
  value: "1"
- name: TRANSFORMERS_OFFLINE
  value: "1"
{{- end -}}

{{/* Cross-field rules the schema cannot express; one line each, naming the value and the fix. */}}
{{- define "tritonkit.validate" -}}
{{- $v := .Values -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail (printf "values: autoscaling.minReplicas (%v) is above autoscaling.maxReplicas (%v): lower minReplicas or raise maxReplicas" $v.autoscaling.minReplicas $v.autoscaling.maxReplicas) -}}
{{- end -}}
{{- if and (eq $v.modelRepository.source "objectStorage") (eq $v.modelRepository.objectStorage.credentials "secret") (not $v.modelRepository.objectStorage.existingSecret) -}}
{{- fail "values: modelRepository.objectStorage.existingSecret is empty: name an existing Secret with the credentials, or set credentials: workloadIdentity" -}}
{{- end -}}
{{- if and (eq $v.modelRepository.source "objectStorage") (eq $v.modelRepository.objectStorage.credentials "workloadIdentity") (eq (include "tritonkit.objectScheme" .) "as") -}}
{{- fail "values: modelRepository.objectStorage.credentials: Triton reads Azure storage with an account key only: set credentials: secret and existingSecret" -}}
{{- end -}}
{{- if and (eq $v.modelRepository.source "objectStorage") $v.modelRepository.objectStorage.region (ne (include "tritonkit.objectScheme" .) "s3") -}}
{{- fail "values: modelRepository.objectStorage.region applies to s3:// only: remove it" -}}
{{- end -}}
{{- end -}}
