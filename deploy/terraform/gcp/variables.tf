variable "project" {
  description = "GCP project of every resource."
  type        = string
}

variable "region" {
  description = "Region of the cluster and the buckets."
  type        = string
  default     = "europe-west1"
}

variable "environment" {
  description = "Name of the environment; part of every resource name."
  type        = string
  default     = "prod"
}

variable "subnet_cidr" {
  description = "Address range of the Dataproc subnet."
  type        = string
  default     = "10.50.0.0/20"
}

variable "dataproc_image_version" {
  description = "Dataproc image (2.2 ships Flink 1.17 as an optional component)."
  type        = string
  default     = "2.2-debian12"
}

variable "worker_count" {
  description = "Dataproc primary workers (Flink task managers run on them through YARN)."
  type        = number
  default     = 2
}

variable "machine_type" {
  description = "Machine type of the master and the workers."
  type        = string
  default     = "n2-standard-4"
}

variable "kafka_bootstrap_servers" {
  description = "Kafka the analytics job reads ticket-bookings from and writes analytics-results to."
  type        = string
}

variable "analytics_job_sql" {
  description = "The analytics job's Flink SQL (deploy/flink, issue 9): uploaded to the jobs bucket and submitted."
  type        = string
  default     = "../../flink/analytics.sql"
}

variable "sql_runner_jar" {
  description = "A Flink SQL runner jar that executes a SQL file given as its argument (see deploy/flink)."
  type        = string
  default     = "../../flink/flink-sql-runner.jar"
}

variable "kafka_connector_jar" {
  description = "Flink's Kafka SQL connector jar matching the image's Flink version."
  type        = string
  default     = "../../flink/flink-sql-connector-kafka.jar"
}
