variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Name of the environment (prod, staging); part of every resource name."
  type        = string
  default     = "prod"
}

variable "vpc_cidr" {
  description = "Address range of the VPC; split into public and private subnets over the zones."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Zones to spread subnets, nodes, brokers and the database over."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.31"
}

variable "node_instance_types" {
  description = "Instance types of the EKS managed node group."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "node_count" {
  description = "Desired, minimum and maximum size of the node group (the cluster autoscaler moves within it)."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 3, min = 3, max = 12 }
}

variable "kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.6.0"
}

variable "kafka_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m5.large"
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.m6g.large"
}

variable "db_allocated_storage" {
  description = "RDS storage in GiB (grows automatically up to ten times this)."
  type        = number
  default     = 100
}

variable "lambda_zip" {
  description = "The ticket-generator bundle built by `boxoffice package-lambda` (path of the zip)."
  type        = string
  default     = "../../../var/ticket-generator.zip"
}

variable "cluster_admin_arns" {
  description = "IAM principals (roles of the operators and of CI) given cluster-admin on EKS."
  type        = list(string)
  default     = []
}

variable "database_services" {
  description = "Services with a PostgreSQL database (and login) of their own."
  type        = list(string)
  default     = ["identity", "catalog", "booking", "payments", "tickets", "analytics", "tracking", "music"]
}
