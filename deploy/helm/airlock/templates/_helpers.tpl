{{/* Name of the chart, or nameOverride. */}}
{{- define "airlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name, at most 63 characters. */}}
{{- define "airlock.fullname" -}}
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

{{- define "airlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "airlock.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Kubernetes-safe form of an agent's name (agent names may hold _ and .). */}}
{{- define "airlock.agentSlug" -}}
{{- . | lower | replace "_" "-" | replace "." "-" | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* gateway.yaml: the user's config with the keys the chart owns set from values. */}}
{{- define "airlock.gatewayConfig" -}}
{{- $gw := .Values.gateway -}}
{{- $config := omit (deepCopy $gw.config) "listen" "tls" "store" "recordings" -}}
{{- $_ := set $config "listen" (dict "grpc" (printf "0.0.0.0:%d" (int $gw.grpcPort)) "http" (printf "0.0.0.0:%d" (int $gw.httpPort))) -}}
{{- $_ := set $config "tls" (dict "cert_file" "/etc/airlock/tls/tls.crt" "key_file" "/etc/airlock/tls/tls.key") -}}
{{- $_ := set $config "store" $gw.store -}}
{{- $_ := set $config "recordings" "/var/lib/airlock/recordings" -}}
{{- toYaml $config -}}
{{- end -}}

{{/* agent.yaml of one agent; called with (dict "root" $ "agent" $agent). Secrets are files under /etc/airlock/secrets. */}}
{{- define "airlock.agentConfig" -}}
{{- $root := .root -}}
{{- $agent := .agent -}}
{{- $gateway := $agent.gateway | default (printf "%s-gateway:%d" (include "airlock.fullname" $root) (int $root.Values.gateway.grpcPort)) -}}
{{- $config := dict "gateway" $gateway "name" $agent.name "key_file" "/etc/airlock/secrets/agent-key" -}}
{{- if $agent.gatewayCaSecret -}}
{{- $tls := dict "ca_file" "/etc/airlock/secrets/gateway-ca.crt" -}}
{{- with $agent.serverName -}}{{- $_ := set $tls "server_name" . -}}{{- end -}}
{{- $_ := set $config "tls" $tls -}}
{{- end -}}
{{- $_ := set $config "metrics" (dict "listen" (printf "0.0.0.0:%d" (int ($agent.metricsPort | default 9465)))) -}}
{{- $connections := list -}}
{{- range $agent.connections -}}
{{- $connection := dict "name" .name "host" .host "port" (int .port) "user" .user "password_file" (printf "/etc/airlock/secrets/%s.password" .name) -}}
{{- with .database -}}{{- $_ := set $connection "database" . -}}{{- end -}}
{{- $tls := omit (deepCopy (.tls | default dict)) "ca_file" -}}
{{- if .caSecret -}}{{- $_ := set $tls "ca_file" (printf "/etc/airlock/secrets/%s-ca.crt" .name) -}}{{- end -}}
{{- if $tls -}}{{- $_ := set $connection "tls" $tls -}}{{- end -}}
{{- $connections = append $connections $connection -}}
{{- end -}}
{{- $_ := set $config "connections" $connections -}}
{{- toYaml $config -}}
{{- end -}}
