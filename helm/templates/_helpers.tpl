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

{{/* The full name with a suffix, cut so that the whole stays a 63-character DNS label: Job names
become the `batch.kubernetes.io/job-name` label of their pods, and label values stop at 63
(https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
Call with (dict "root" $ "suffix" "-test"). */}}
{{- define "tritonkit.suffixedName" -}}
{{- $base := include "tritonkit.fullname" .root | trunc (int (sub 63 (len .suffix))) | trimSuffix "-" -}}
{{- printf "%s%s" $base .suffix -}}
{{- end -}}

{{- define "tritonkit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tritonkit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tritonkit
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata.annotations of every object: commonAnnotations plus the object's own (a dict);
nothing when both are empty. Used right after metadata.labels, at indent 2. */}}
{{- define "tritonkit.annotations" -}}
{{- $annotations := merge (deepCopy (default (dict) .own)) (deepCopy (default (dict) .root.Values.commonAnnotations)) -}}
{{- with $annotations -}}
{{- dict "annotations" . | toYaml | nindent 2 -}}
{{- end -}}
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

{{/* repository[:tag|@digest]; global.imageRegistry (bitnami convention) replaces the registry
host of the repository (its first part when that has a dot or a port, or is localhost), or is
put in front when the repository names none: a pull-through mirror of every image.
Call with (dict "image" .Values.image "global" .Values.global). */}}
{{- define "tritonkit.imageRef" -}}
{{- $repository := .image.repository -}}
{{- $registry := "" -}}
{{- if .global -}}{{- $registry = default "" .global.imageRegistry -}}{{- end -}}
{{- if $registry -}}
{{- $parts := splitList "/" $repository -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $repository = join "/" (rest $parts) -}}
{{- end -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository .image.tag -}}
{{- end -}}
{{- end -}}

{{- define "tritonkit.tritonImage" -}}
{{- include "tritonkit.imageRef" (dict "image" .Values.image "global" .Values.global) -}}
{{- end -}}

{{- define "tritonkit.tritonkitImage" -}}
{{- include "tritonkit.imageRef" (dict "image" .Values.tritonkitImage "global" .Values.global) -}}
{{- end -}}

{{/* NVIDIA's TensorRT image of the Triton image's release: Triton YY.MM ships the TensorRT of
the TensorRT container YY.MM (NVIDIA Frameworks Support Matrix,
https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html), so a plan built in
nvcr.io/nvidia/tensorrt:24.10-py3 loads in nvcr.io/nvidia/tritonserver:24.10-py3. */}}
{{- define "tritonkit.tensorrtImage" -}}
{{- $image := deepCopy .Values.tensorrt.image -}}
{{- if and (not $image.tag) (not $image.digest) -}}
{{- $release := regexFind "^[0-9]{2}\\.[0-9]{2}" .Values.image.tag -}}
{{- $_ := set $image "tag" (printf "%s-py3" $release) -}}
{{- end -}}
{{- include "tritonkit.imageRef" (dict "image" $image "global" .Values.global) -}}
{{- end -}}

{{/* Which variant the repository serves, and whether its model is a TensorRT plan built in the pod. */}}
{{- define "tritonkit.variant" -}}
{{- default "fp32" .Values.modelRepository.generate.spec.variant -}}
{{- end -}}

{{- define "tritonkit.buildsPlan" -}}
{{- if and (eq .Values.modelRepository.source "generate") (hasPrefix "trt-" (include "tritonkit.variant" .)) -}}true{{- end -}}
{{- end -}}

{{/* release: a Job generates once into a volume that pods only read; pod: every pod generates. */}}
{{- define "tritonkit.generateMode" -}}
{{- if eq .Values.modelRepository.source "generate" -}}{{ .Values.modelRepository.generate.mode }}{{- end -}}
{{- end -}}

{{/* The content key of this release's repository: what generate reads (the spec, the images
and the bundling) and nothing else, so a change of replicas does not regenerate and a rollback
finds its folder again. */}}
{{- define "tritonkit.repositoryKey" -}}
{{- $inputs := list (include "tritonkit.fullname" .) (include "tritonkit.specBody" .) (include "tritonkit.tritonkitImage" .) .Values.modelRepository.generate.bundleTokenizers -}}
{{- toJson $inputs | sha256sum | trunc 16 -}}
{{- end -}}

{{/* Where the generate Job writes (release mode); pods mount the claim read-only. */}}
{{- define "tritonkit.repositoriesClaim" -}}
{{- default (include "tritonkit.suffixedName" (dict "root" . "suffix" "-repositories")) .Values.modelRepository.generate.persistence.existingClaim -}}
{{- end -}}

{{/* The repository folder (or URL) tritonserver reads. */}}
{{- define "tritonkit.repositoryPath" -}}
{{- $source := .Values.modelRepository.source -}}
{{- if eq $source "generate" -}}
{{- if and (eq .Values.modelRepository.generate.mode "release") (not (include "tritonkit.buildsPlan" .)) -}}
/models
{{- else -}}
/workspace/repository
{{- end -}}
{{- else if eq $source "pvc" -}}
/models
{{- else if eq $source "objectStorage" -}}
{{- .Values.modelRepository.objectStorage.url -}}
{{- else -}}
{{- .Values.modelRepository.image.path -}}
{{- end -}}
{{- end -}}

{{/* Where `tritonkit generate` writes: the release's folder on the claim, or the pod's emptyDir. */}}
{{- define "tritonkit.generateOutput" -}}
{{- if eq .Values.modelRepository.generate.mode "release" -}}
{{- printf "/repositories/%s" (include "tritonkit.repositoryKey" .) -}}
{{- else -}}
/workspace/repository
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

{{/* The whole cores of tritonserver's CPU request (else its limit; Kubernetes defaults the
request to the limit), at least 1: "" when neither is set. "1500m" and 1.5 give 1, so that
one-thread instances never outnumber the cores the pod is guaranteed. */}}
{{- define "tritonkit.targetCpus" -}}
{{- $resources := default (dict) .Values.resources -}}
{{- $cpu := "" -}}
{{- range $kind := list "limits" "requests" -}}
{{- $set := index $resources $kind | default (dict) -}}
{{- if $set.cpu }}{{ $cpu = toString $set.cpu }}{{ end -}}
{{- end -}}
{{- if $cpu -}}
{{- if hasSuffix "m" $cpu -}}
{{- max 1 (div (atoi (trimSuffix "m" $cpu)) 1000) -}}
{{- else -}}
{{- max 1 (int (floor (float64 $cpu))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The spec keys the user gave plus what the chart decides, without the output path. The
target's cores (which size the instance layout) come from the pod's CPU request unless the spec
names them: generate may run on another node (the release Job). */}}
{{- define "tritonkit.specBody" -}}
{{- $spec := deepCopy .Values.modelRepository.generate.spec -}}
{{- $_ := set $spec "name" .Values.modelName -}}
{{- $_ := set $spec "model" .Values.modelSource.path -}}
{{- $_ := set $spec "device" (ternary "gpu" "cpu" .Values.gpu.enabled) -}}
{{- $_ := set $spec "triton_image" (include "tritonkit.tritonImage" .) -}}
{{- $target := default (dict) $spec.target -}}
{{- $cpus := include "tritonkit.targetCpus" . -}}
{{- if and (not $target.cpus) $cpus -}}
{{- $_ := set $target "cpus" (atoi $cpus) -}}
{{- $_ := set $spec "target" $target -}}
{{- end -}}
{{- toYaml $spec -}}
{{- end -}}

{{/* The spec the generate step reads. */}}
{{- define "tritonkit.spec" -}}
{{- $spec := include "tritonkit.specBody" . | fromYaml -}}
{{- $_ := set $spec "output" (include "tritonkit.generateOutput" .) -}}
{{- toYaml $spec -}}
{{- end -}}

{{/* Volumes for the Hugging Face model folder, when it comes from a PVC. */}}
{{- define "tritonkit.modelSourceVolume" -}}
{{- if .Values.modelSource.pvc.claimName -}}
- name: model-source
  persistentVolumeClaim:
    claimName: {{ .Values.modelSource.pvc.claimName | quote }}
    readOnly: true
{{- end }}
{{- end -}}

{{- define "tritonkit.modelSourceMount" -}}
{{- if .Values.modelSource.pvc.claimName -}}
- name: model-source
  mountPath: {{ .Values.modelSource.path }}
  readOnly: true
  {{- with .Values.modelSource.pvc.subPath }}
  subPath: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Environment of every tritonkit container: every cache on the /tmp emptyDir (the root
filesystem is read-only; checked under bubblewrap in tests/helm), no hub access. */}}
{{- define "tritonkit.tritonkitEnv" -}}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: TRITONKIT_HOME
  value: /tmp/tritonkit
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: HF_HUB_OFFLINE
  value: "1"
- name: TRANSFORMERS_OFFLINE
  value: "1"
{{- end -}}

{{/* The admin key that unlocks Triton's restricted APIs (values: server.restrictedApi). */}}
{{- define "tritonkit.adminKeySecret" -}}
{{- default (include "tritonkit.suffixedName" (dict "root" . "suffix" "-admin-key")) .Values.server.restrictedApi.existingSecret -}}
{{- end -}}

{{- define "tritonkit.adminKeyEnv" -}}
- name: TRITONKIT_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "tritonkit.adminKeySecret" . | quote }}
      key: {{ .Values.server.restrictedApi.secretKey | quote }}
{{- end -}}

{{/* A storage quantity in bytes (for the ephemeral-storage requests that sum emptyDir limits). */}}
{{- define "tritonkit.bytes" -}}
{{- $text := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text -}}
{{- $suffix := trimPrefix $number $text -}}
{{- $factors := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 -}}
{{- mulf (float64 $number) (get $factors $suffix) | int64 -}}
{{- end -}}

{{/* Seconds a rollout may take before Kubernetes calls it failed: every bounded step of a new pod
(the wait for or the run of generate, the TensorRT build, the startup probe's budget) plus five
minutes for scheduling and image pulls. */}}
{{- define "tritonkit.rolloutBudget" -}}
{{- $budget := 300 -}}
{{- if .Values.probes.startup.enabled -}}
{{- $budget = add $budget (mul .Values.probes.startup.periodSeconds .Values.probes.startup.failureThreshold) -}}
{{- end -}}
{{- if eq .Values.modelRepository.source "generate" -}}
{{- $budget = add $budget .Values.modelRepository.generate.timeoutSeconds -}}
{{- end -}}
{{- if include "tritonkit.buildsPlan" . -}}
{{- $budget = add $budget .Values.tensorrt.timeoutSeconds -}}
{{- end -}}
{{- $budget -}}
{{- end -}}

{{/* tritonserver flags the chart renders itself, and the value to use instead of extraArgs. */}}
{{- define "tritonkit.ownedFlags" -}}
--model-repository: modelRepository
--model-store: modelRepository
--model-control-mode: server.modelControlMode
--load-model: server.loadModels
--repository-poll-secs: server.repositoryPollSeconds
--strict-readiness: (always true, for the probes)
--http-port: ports.http
--grpc-port: ports.grpc
--metrics-port: ports.metrics
--allow-gpu-metrics: gpu.metrics
--exit-timeout-secs: server.exitTimeoutSeconds
--log-verbose: server.logVerbose
--http-restricted-api: server.restrictedApi
--grpc-restricted-protocol: server.restrictedApi
{{- end -}}

{{/* Cross-field rules the schema cannot express; one line each, naming the value and the fix. */}}
{{- define "tritonkit.validate" -}}
{{- $v := .Values -}}
{{- $source := $v.modelRepository.source -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail (printf "values: autoscaling.minReplicas (%v) is above autoscaling.maxReplicas (%v): lower minReplicas or raise maxReplicas" $v.autoscaling.minReplicas $v.autoscaling.maxReplicas) -}}
{{- end -}}
{{- if and (eq $source "objectStorage") (eq $v.modelRepository.objectStorage.credentials "secret") (not $v.modelRepository.objectStorage.existingSecret) -}}
{{- fail "values: modelRepository.objectStorage.existingSecret is empty: name an existing Secret with the credentials, or set credentials: workloadIdentity" -}}
{{- end -}}
{{- if and (eq $source "objectStorage") (eq $v.modelRepository.objectStorage.credentials "workloadIdentity") (eq (include "tritonkit.objectScheme" .) "as") -}}
{{- fail "values: modelRepository.objectStorage.credentials: Triton reads Azure storage with an account key only: set credentials: secret and existingSecret" -}}
{{- end -}}
{{- if and (eq $source "objectStorage") $v.modelRepository.objectStorage.region (ne (include "tritonkit.objectScheme" .) "s3") -}}
{{- fail "values: modelRepository.objectStorage.region applies to s3:// only: remove it" -}}
{{- end -}}
{{- $needsTritonkit := or (eq $source "generate") $v.test.check.enabled $v.test.loadtest.enabled -}}
{{- if and $needsTritonkit (not $v.tritonkitImage.repository) -}}
{{- fail "values: tritonkitImage.repository is empty and no public tritonkit image exists: build helm/images/tritonkit/Dockerfile, push it and set tritonkitImage.repository (or turn off test.check, test.loadtest and use a repository source other than generate)" -}}
{{- end -}}
{{- if and (eq $source "generate") (eq $v.modelRepository.generate.mode "pod") (eq (include "tritonkit.variant" .) "auto") -}}
{{- fail "values: modelRepository.generate.spec.variant: auto benchmarks on each pod's node, so replicas could serve different variants: set modelRepository.generate.mode: release (one repository per release) or pin the variant that `tritonkit generate --variant auto` chose" -}}
{{- end -}}
{{- if and (include "tritonkit.buildsPlan" .) (not $v.gpu.enabled) -}}
{{- fail (printf "values: modelRepository.generate.spec.variant: %s builds a TensorRT plan on the serving GPU: set gpu.enabled: true or choose an ONNX variant" (include "tritonkit.variant" .)) -}}
{{- end -}}
{{- if and (include "tritonkit.buildsPlan" .) (not $v.tensorrt.image.tag) (not $v.tensorrt.image.digest) (not (regexMatch "^[0-9]{2}\\.[0-9]{2}" $v.image.tag)) -}}
{{- fail (printf "values: tensorrt.image.tag is empty and image.tag %q names no YY.MM release: set tensorrt.image.tag to the nvcr.io/nvidia/tensorrt tag of your Triton image's release (e.g. 24.10-py3)" $v.image.tag) -}}
{{- end -}}
{{- if and (eq $v.gpu.migStrategy "mixed") $v.gpu.enabled (not (hasPrefix "nvidia.com/mig-" $v.gpu.resourceName)) -}}
{{- fail (printf "values: gpu.migStrategy: mixed exposes MIG slices as nvidia.com/mig-<profile>, not %s: set gpu.resourceName, e.g. nvidia.com/mig-1g.10gb" $v.gpu.resourceName) -}}
{{- end -}}
{{- if and (eq $v.gpu.migStrategy "single") (ne $v.gpu.resourceName "nvidia.com/gpu") -}}
{{- fail (printf "values: gpu.migStrategy: single exposes MIG slices as nvidia.com/gpu, not %s: set gpu.resourceName: nvidia.com/gpu" $v.gpu.resourceName) -}}
{{- end -}}
{{- $owned := include "tritonkit.ownedFlags" . | fromYaml -}}
{{- range $v.server.extraArgs -}}
{{- $flag := regexReplaceAll "=.*$" . "" -}}
{{- if hasKey $owned $flag -}}
{{- fail (printf "values: server.extraArgs: %s is rendered by the chart and would conflict: set %s instead" $flag (get $owned $flag)) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.server.modelControlMode "explicit") $v.server.loadModels $v.probes.readiness.enabled (eq $v.probes.readiness.type "inference") (not (has $v.modelName $v.server.loadModels)) -}}
{{- fail (printf "values: server.loadModels does not load %s, which the inference readiness probe calls: add it, or set probes.readiness.type: http" $v.modelName) -}}
{{- end -}}
{{- $budget := int (include "tritonkit.rolloutBudget" .) -}}
{{- if and (not (kindIs "invalid" $v.progressDeadlineSeconds)) (lt (int $v.progressDeadlineSeconds) $budget) -}}
{{- fail (printf "values: progressDeadlineSeconds (%v) is shorter than a new pod may take (%d s: repository, TensorRT build, startup probe, 300 s to schedule and pull): raise it or leave it null" $v.progressDeadlineSeconds $budget) -}}
{{- end -}}
{{- end -}}
