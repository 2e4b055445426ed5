{{/*
Chart name, shortened to fit DNS label limits.
*/}}
{{- define "fedirelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. Kept to 50 characters so that role suffixes
("-worker", "-migrate") still fit in 63.
*/}}
{{- define "fedirelay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fedirelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fedirelay.apiName" -}}
{{- include "fedirelay.fullname" . }}
{{- end }}

{{- define "fedirelay.workerName" -}}
{{- printf "%s-worker" (include "fedirelay.fullname" .) }}
{{- end }}

{{- define "fedirelay.configMapName" -}}
{{- printf "%s-config" (include "fedirelay.fullname" .) }}
{{- end }}

{{/*
The Secret that holds ADMIN_TOKEN, SECRET_KEY, DATABASE_URL, REDIS_URL and the
webhook secrets: the operator's existingSecret, or the one this chart creates.
*/}}
{{- define "fedirelay.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "fedirelay.fullname" . }}
{{- end }}
{{- end }}

{{- define "fedirelay.labels" -}}
helm.sh/chart: {{ include "fedirelay.chart" . }}
{{ include "fedirelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "fedirelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedirelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fedirelay.apiSelectorLabels" -}}
{{ include "fedirelay.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "fedirelay.workerSelectorLabels" -}}
{{ include "fedirelay.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "fedirelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fedirelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "fedirelay.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Host part of config.baseUrl, and the WebFinger domain (config.domain or that host).
*/}}
{{- define "fedirelay.baseHost" -}}
{{- (urlParse .Values.config.baseUrl).host }}
{{- end }}

{{- define "fedirelay.domain" -}}
{{- default (include "fedirelay.baseHost" .) .Values.config.domain }}
{{- end }}

{{/*
Non-secret settings as a YAML map of environment variables. The ConfigMap holds
them for the Deployments; the migration Job, which runs before the ConfigMap
exists, sets them directly.
*/}}
{{- define "fedirelay.configData" -}}
FEDIRELAY_BASE_URL: {{ .Values.config.baseUrl | quote }}
{{- with .Values.config.domain }}
FEDIRELAY_DOMAIN: {{ . | quote }}
{{- end }}
FEDIRELAY_QUEUE_NAME: {{ .Values.config.queueName | quote }}
FEDIRELAY_TEST_MODE: "false"
FEDIRELAY_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
FEDIRELAY_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
FEDIRELAY_AUTHORIZED_FETCH: {{ .Values.config.authorizedFetch | quote }}
FEDIRELAY_MAX_WEBHOOK_BODY_BYTES: {{ .Values.config.maxWebhookBodyBytes | int64 | quote }}
FEDIRELAY_MAX_INBOX_BODY_BYTES: {{ .Values.config.maxInboxBodyBytes | int64 | quote }}
FEDIRELAY_LISTEN_HOST: "0.0.0.0"
FEDIRELAY_LISTEN_PORT: {{ .Values.api.containerPort | int64 | quote }}
FEDIRELAY_DATA_DIR: "/var/lib/fedirelay"
{{- range $key, $value := .Values.config.extra }}
FEDIRELAY_{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/*
A secret-backed environment variable. Arguments: list of env name, secret name,
key, optional (bool).
*/}}
{{- define "fedirelay.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 }}
      key: {{ index . 2 }}
      {{- if index . 3 }}
      optional: true
      {{- end }}
{{- end }}

{{/*
Environment of the API and worker containers that comes from the Secret.
*/}}
{{- define "fedirelay.secretEnvs" -}}
{{- $secret := include "fedirelay.secretName" . -}}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_DATABASE_URL" $secret "database-url" false) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_REDIS_URL" $secret "redis-url" false) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_ADMIN_TOKEN" $secret "admin-token" false) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_SECRET_KEY" $secret "secret-key" false) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_CMS_WEBHOOK_SECRETS" $secret "cms-webhook-secrets" true) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_FORGEJO_WEBHOOK_SECRET" $secret "forgejo-webhook-secret" true) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_GITHUB_WEBHOOK_SECRET" $secret "github-webhook-secret" true) }}
{{ include "fedirelay.secretEnv" (list "FEDIRELAY_GHOST_WEBHOOK_SECRET" $secret "ghost-webhook-secret" true) }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod annotations that change whenever the configuration does, so that
`helm upgrade` rolls the pods.
*/}}
{{- define "fedirelay.checksumAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
Volumes every fedirelay pod mounts: a writable /tmp and the data directory.
*/}}
{{- define "fedirelay.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{- define "fedirelay.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/fedirelay
{{- end }}
