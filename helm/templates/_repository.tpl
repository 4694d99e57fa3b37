{{/* The steps that put the model repository in place before tritonserver starts. */}}

{{/* The generate Job's script (release mode): idempotent, so a re-run Job, a rollback or a
second Job for the same content returns at once; the marker is written last, after the
repository is complete (tritonkit generate writes its folder atomically; the tokenizers copy and
the marker follow). Triton ignores files at the repository root. */}}
{{- define "tritonkit.generateScript" -}}
set -eu
if [ -e "$TRITONKIT_REPOSITORY/.tritonkit-complete" ]; then
  echo "tritonkit: $TRITONKIT_REPOSITORY is already generated for this spec and these images"
  exit 0
fi
tritonkit generate --spec /etc/tritonkit/tritonkit.yaml --force{{ if include "tritonkit.buildsPlan" . }} --defer-plan{{ end }}
{{- if .Values.modelRepository.generate.bundleTokenizers }}
cp -R {{ include "tritonkit.bundledPythonPath" . }}/. "$TRITONKIT_REPOSITORY/${TRITONKIT_MODEL_NAME}_tokenizer/1/"
{{- end }}
touch "$TRITONKIT_REPOSITORY/.tritonkit-complete"
echo "tritonkit: generated $TRITONKIT_REPOSITORY"
{{- end -}}

{{/* The server pod's wait for the release's repository (release mode), bounded; with a
TensorRT variant it then copies the repository into the pod's emptyDir, where build-plan adds
the plan for this pod's GPU. */}}
{{- define "tritonkit.waitScript" -}}
set -eu
deadline=$(( $(date +%s) + TRITONKIT_TIMEOUT_SECONDS ))
until [ -e "$TRITONKIT_REPOSITORY/.tritonkit-complete" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "tritonkit: $TRITONKIT_REPOSITORY is not generated after $TRITONKIT_TIMEOUT_SECONDS s: read the generate Job's log (kubectl logs job/$TRITONKIT_JOB)"
    exit 1
  fi
  sleep 5
done
{{- if include "tritonkit.buildsPlan" . }}
rm -rf /workspace/repository
cp -R "$TRITONKIT_REPOSITORY" /workspace/repository
echo "tritonkit: copied $TRITONKIT_REPOSITORY for the TensorRT build"
{{- else }}
echo "tritonkit: $TRITONKIT_REPOSITORY is ready"
{{- end }}
{{- end -}}

{{/* The generate Job's pod spec; its hash names the Job (a Job's template is immutable, so a
changed template must be a new Job). */}}
{{- define "tritonkit.generateJobPod" -}}
{{- $generate := .Values.modelRepository.generate -}}
{{- $tmpBytes := include "tritonkit.bytes" .Values.tmp.sizeLimit -}}
restartPolicy: Never
serviceAccountName: {{ include "tritonkit.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .Values.nodeSelector $generate.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $tolerations := $generate.tolerations }}
{{- if not $tolerations }}
{{- $tolerations = include "tritonkit.tolerations" . | fromYamlArray }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: generate
    image: {{ include "tritonkit.tritonkitImage" . }}
    imagePullPolicy: {{ .Values.tritonkitImage.pullPolicy }}
    command: ["sh", "-c", {{ include "tritonkit.generateScript" . | quote }}]
    env:
      - name: TRITONKIT_REPOSITORY
        value: {{ include "tritonkit.generateOutput" . | quote }}
      - name: TRITONKIT_MODEL_NAME
        value: {{ .Values.modelName | quote }}
      {{- include "tritonkit.tritonkitEnv" . | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      {{- $resources := deepCopy $generate.resources }}
      {{- $requests := default (dict) $resources.requests }}
      {{- if not (hasKey $requests "ephemeral-storage") }}
      {{- $_ := set $requests "ephemeral-storage" (int64 $tmpBytes) }}
      {{- end }}
      {{- $_ := set $resources "requests" $requests }}
      {{- toYaml $resources | nindent 6 }}
    volumeMounts:
      - name: spec
        mountPath: /etc/tritonkit
        readOnly: true
      - name: repositories
        mountPath: /repositories
      - name: tmp
        mountPath: /tmp
      {{- with include "tritonkit.modelSourceMount" . }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with $generate.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: spec
    configMap:
      name: {{ include "tritonkit.suffixedName" (dict "root" . "suffix" "-spec") }}
  - name: repositories
    persistentVolumeClaim:
      claimName: {{ include "tritonkit.repositoriesClaim" . | quote }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmp.sizeLimit }}
  {{- with include "tritonkit.modelSourceVolume" . }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with $generate.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Tolerations of the server pods: the GPU node pool's taint, by its own key (a MIG resource
name such as nvidia.com/mig-1g.10gb is not the taint's key), then the user's. */}}
{{- define "tritonkit.tolerations" -}}
{{- $tolerations := list -}}
{{- if and .Values.gpu.enabled .Values.gpu.tolerateGpuTaint -}}
{{- $tolerations = append $tolerations (dict "key" .Values.gpu.taintKey "operator" "Exists" "effect" "NoSchedule") -}}
{{- end -}}
{{- $tolerations = concat $tolerations .Values.tolerations -}}
{{- toYaml $tolerations -}}
{{- end -}}

{{/* The init containers of the server pod that put the repository in place. */}}
{{- define "tritonkit.repositoryInitContainers" -}}
{{- $generate := .Values.modelRepository.generate -}}
{{- $tmpBytes := int64 (include "tritonkit.bytes" .Values.tmp.sizeLimit) -}}
{{- $workspaceBytes := int64 (include "tritonkit.bytes" $generate.sizeLimit) -}}
{{- $small := dict "requests" (dict "cpu" "100m" "memory" "64Mi") "limits" (dict "memory" "128Mi") -}}
{{- if eq $generate.mode "release" }}
# Waits (bounded) for the release's repository that the generate Job writes once.
- name: repository
  image: {{ include "tritonkit.tritonImage" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sh", "-c", {{ include "tritonkit.waitScript" . | quote }}]
  env:
    - name: TRITONKIT_REPOSITORY
      value: {{ include "tritonkit.generateOutput" . | quote }}
    - name: TRITONKIT_TIMEOUT_SECONDS
      value: {{ $generate.timeoutSeconds | quote }}
    - name: TRITONKIT_JOB
      value: {{ include "tritonkit.generateJobName" . | quote }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $small | nindent 4 }}
  volumeMounts:
    - name: repositories
      mountPath: /repositories
      readOnly: true
    {{- if include "tritonkit.buildsPlan" . }}
    - name: workspace
      mountPath: /workspace
    {{- end }}
{{- else }}
# Builds the repository from the ConfigMap'd spec on the node itself (offline: the model
# folder comes from modelSource), into the emptyDir tritonserver reads; bounded by timeout(1).
- name: generate
  image: {{ include "tritonkit.tritonkitImage" . }}
  imagePullPolicy: {{ .Values.tritonkitImage.pullPolicy }}
  command:
    - timeout
    - -k
    - "30"
    - {{ $generate.timeoutSeconds | quote }}
    - tritonkit
    - generate
    - --spec
    - /etc/tritonkit/tritonkit.yaml
    - --force
    {{- if include "tritonkit.buildsPlan" . }}
    - --defer-plan
    {{- end }}
  env:
    {{- include "tritonkit.tritonkitEnv" . | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- $resources := deepCopy $generate.resources }}
    {{- $requests := default (dict) $resources.requests }}
    {{- if not (hasKey $requests "ephemeral-storage") }}
    {{- $_ := set $requests "ephemeral-storage" (add $tmpBytes $workspaceBytes) }}
    {{- end }}
    {{- $_ := set $resources "requests" $requests }}
    {{- toYaml $resources | nindent 4 }}
  volumeMounts:
    - name: spec
      mountPath: /etc/tritonkit
      readOnly: true
    - name: workspace
      mountPath: /workspace
    - name: tmp
      mountPath: /tmp
    {{- with include "tritonkit.modelSourceMount" . }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $generate.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- if $generate.bundleTokenizers }}
# The Python backend stub runs isolated (PYTHONPATH and user site are ignored) but puts
# the model's version folder on sys.path: `tokenizers` goes there.
- name: bundle-tokenizers
  image: {{ include "tritonkit.tritonkitImage" . }}
  imagePullPolicy: {{ .Values.tritonkitImage.pullPolicy }}
  command: ["cp", "-R", "{{ include "tritonkit.bundledPythonPath" . }}/.", "/workspace/repository/{{ .Values.modelName }}_tokenizer/1/"]
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $small | nindent 4 }}
  volumeMounts:
    - name: workspace
      mountPath: /workspace
{{- end }}
{{- end }}
{{- if include "tritonkit.buildsPlan" . }}
{{- $trt := .Values.tensorrt }}
# Builds the TensorRT plan on this pod's GPU with the TensorRT of the serving Triton release
# (issue 11): tritonkit wrote the recipe and a stdlib-only build script into the model folder.
# args, not command: the NGC image's entrypoint runs first (CUDA compatibility checks).
- name: build-plan
  image: {{ include "tritonkit.tensorrtImage" . }}
  imagePullPolicy: {{ $trt.image.pullPolicy }}
  args:
    - timeout
    - -k
    - "30"
    - {{ $trt.timeoutSeconds | quote }}
    - python3
    - {{ printf "/workspace/repository/%s_trt/build_plan.py" .Values.modelName | quote }}
  env:
    - name: HOME
      value: /tmp
    - name: XDG_CACHE_HOME
      value: /tmp/.cache
    - name: PYTHONDONTWRITEBYTECODE
      value: "1"
    {{- if $trt.timingCache.existingClaim }}
    - name: TRITONKIT_TIMING_CACHE
      value: /var/cache/tritonkit/timing-cache
    {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- $resources := deepCopy $trt.resources }}
    {{- $limits := default (dict) $resources.limits }}
    {{- $_ := set $limits .Values.gpu.resourceName .Values.gpu.count }}
    {{- $_ := set $resources "limits" $limits }}
    {{- toYaml $resources | nindent 4 }}
  volumeMounts:
    - name: workspace
      mountPath: /workspace
    - name: tmp
      mountPath: /tmp
    {{- if $trt.timingCache.existingClaim }}
    - name: timing-cache
      mountPath: /var/cache/tritonkit/timing-cache
      {{- with $trt.timingCache.subPath }}
      subPath: {{ . | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "tritonkit.generateJobName" -}}
{{- $hash := include "tritonkit.generateJobPod" . | sha256sum | trunc 8 -}}
{{- include "tritonkit.suffixedName" (dict "root" . "suffix" (printf "-generate-%s" $hash)) -}}
{{- end -}}
