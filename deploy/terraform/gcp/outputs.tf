output "dataproc_cluster" {
  description = "The Flink cluster (gcloud dataproc clusters describe ...)."
  value       = google_dataproc_cluster.flink.name
}

output "jobs_bucket" {
  description = "Bucket of the job's SQL, jars and checkpoints."
  value       = google_storage_bucket.jobs.name
}

output "objects_bucket" {
  description = "boxoffice's objects bucket (BOXOFFICE_S3_BUCKET of the gcp overlay, through the S3 interoperability API)."
  value       = google_storage_bucket.objects.name
}

output "analytics_job_trigger" {
  description = "Changes whenever the analytics job is submitted again."
  value       = terraform_data.analytics_job.id
}
