# What deploy/k8s/overlays/aws needs (image, Kafka, bucket, the tickets service account's role) and what an
# operator connects to.
output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = module.eks.cluster_endpoint
}

output "image_repository" {
  description = "ECR repository of the boxoffice image (the overlay's images.newName)."
  value       = module.ecr.repository_url
}

output "kafka_bootstrap_servers" {
  description = "MSK brokers (BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS)."
  value       = module.msk.bootstrap_brokers_tls
}

output "database_endpoint" {
  description = "RDS PostgreSQL endpoint (the services' database URLs live in Secrets Manager)."
  value       = module.rds.endpoint
}

output "database_url_secret_arns" {
  description = "Secrets Manager ARNs of each service's BOXOFFICE_<SERVICE>_DATABASE_URL (External Secrets reads them)."
  value       = module.rds.url_secret_arns
}

output "bucket" {
  description = "S3 bucket of uploads and tickets (BOXOFFICE_S3_BUCKET)."
  value       = module.storage.bucket_name
}

output "ticket_generator_function" {
  description = "The ticket-generator Lambda (boxoffice.tickets.functions.handle)."
  value       = module.storage.function_name
}

output "tickets_role_arn" {
  description = "IAM role of the tickets service account (eks.amazonaws.com/role-arn)."
  value       = module.storage.tickets_role_arn
}
