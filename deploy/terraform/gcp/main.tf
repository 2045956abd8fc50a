# boxoffice's analytics on GCP: a Dataproc cluster with the Flink component, the GCS buckets of its jobs and
# of boxoffice's objects (used by the GKE overlay through the S3 interoperability API), and the submission
# of the analytics job (Flink SQL from deploy/flink: ticket-bookings -> 1-minute windows -> analytics-results).
locals {
  name = "boxoffice-${var.environment}"
}

data "google_project" "this" {}

resource "google_compute_network" "this" {
  name                    = local.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "dataproc" {
  name                     = "${local.name}-dataproc"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Dataproc's nodes talk to each other on every port; nothing comes in from outside the subnet.
resource "google_compute_firewall" "internal" {
  name          = "${local.name}-dataproc-internal"
  network       = google_compute_network.this.name
  direction     = "INGRESS"
  source_ranges = [var.subnet_cidr]
  allow {
    protocol = "tcp"
  }
  allow {
    protocol = "udp"
  }
  allow {
    protocol = "icmp"
  }
}

resource "google_kms_key_ring" "this" {
  name     = local.name
  location = var.region
}

resource "google_kms_crypto_key" "data" {
  name            = "data"
  key_ring        = google_kms_key_ring.this.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

# Cloud Storage and Compute Engine encrypt with the key on the project's behalf.
resource "google_kms_crypto_key_iam_member" "storage" {
  crypto_key_id = google_kms_crypto_key.data.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
}

resource "google_kms_crypto_key_iam_member" "compute" {
  crypto_key_id = google_kms_crypto_key.data.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com"
}

resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:this is the access-log bucket; logging it into itself would loop
  name                        = "${var.project}-${local.name}-access-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "jobs" {
  name                        = "${var.project}-${local.name}-dataproc-jobs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.data.id
  }
  logging {
    log_bucket = google_storage_bucket.logs.name
  }
  depends_on = [google_kms_crypto_key_iam_member.storage]
}

resource "google_storage_bucket" "objects" {
  name                        = "${var.project}-${local.name}-objects"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.data.id
  }
  logging {
    log_bucket = google_storage_bucket.logs.name
  }
  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.storage]
}

resource "google_service_account" "dataproc" {
  account_id   = "${local.name}-dataproc"
  display_name = "boxoffice Dataproc (Flink) nodes"
}

resource "google_project_iam_member" "dataproc_worker" {
  project = var.project
  role    = "roles/dataproc.worker"
  member  = "serviceAccount:${google_service_account.dataproc.email}"
}

# The nodes read the job's files and write checkpoints in the jobs bucket only.
resource "google_storage_bucket_iam_member" "dataproc_jobs" {
  bucket = google_storage_bucket.jobs.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.dataproc.email}"
}

resource "google_dataproc_cluster" "flink" {
  name   = "${local.name}-flink"
  region = var.region

  cluster_config {
    staging_bucket = google_storage_bucket.jobs.name

    gce_cluster_config {
      subnetwork       = google_compute_subnetwork.dataproc.id
      internal_ip_only = true
      service_account  = google_service_account.dataproc.email
      service_account_scopes = [
        "https://www.googleapis.com/auth/cloud-platform",
      ]
      shielded_instance_config {
        enable_secure_boot          = true
        enable_vtpm                 = true
        enable_integrity_monitoring = true
      }
    }

    master_config {
      num_instances = 1 # Flink on Dataproc has no high-availability mode with three masters
      machine_type  = var.machine_type
      disk_config {
        boot_disk_size_gb = 100
      }
    }

    worker_config {
      num_instances = var.worker_count
      machine_type  = var.machine_type
      disk_config {
        boot_disk_size_gb = 100
      }
    }

    software_config {
      image_version       = var.dataproc_image_version
      optional_components = ["FLINK"]
      override_properties = {
        "flink:state.checkpoints.dir"                             = "gs://${google_storage_bucket.jobs.name}/checkpoints"
        "flink:execution.checkpointing.interval"                  = "30s"
        "flink:execution.checkpointing.mode"                      = "EXACTLY_ONCE"
        "dataproc:dataproc.logging.stackdriver.job.driver.enable" = "true"
      }
    }

    encryption_config {
      kms_key_name = google_kms_crypto_key.data.id
    }

    endpoint_config {
      enable_http_port_access = true # the component gateway: Flink's web UI through the console
    }
  }

  depends_on = [google_project_iam_member.dataproc_worker, google_kms_crypto_key_iam_member.compute]
}

resource "google_storage_bucket_object" "analytics_sql" {
  name   = "jobs/analytics.sql"
  bucket = google_storage_bucket.jobs.name
  source = var.analytics_job_sql
}

resource "google_storage_bucket_object" "sql_runner" {
  name   = "jobs/flink-sql-runner.jar"
  bucket = google_storage_bucket.jobs.name
  source = var.sql_runner_jar
}

resource "google_storage_bucket_object" "kafka_connector" {
  name   = "jobs/flink-sql-connector-kafka.jar"
  bucket = google_storage_bucket.jobs.name
  source = var.kafka_connector_jar
}

# The analytics job: submitted as a Dataproc Flink job (the Jobs API's Flink type) whenever its SQL, its
# jars or the cluster change. The provider has no Flink job type yet, so gcloud submits it.
resource "terraform_data" "analytics_job" {
  triggers_replace = [
    google_dataproc_cluster.flink.id,
    google_storage_bucket_object.analytics_sql.md5hash,
    google_storage_bucket_object.sql_runner.md5hash,
    google_storage_bucket_object.kafka_connector.md5hash,
    var.kafka_bootstrap_servers,
  ]

  provisioner "local-exec" {
    command = join(" ", [
      "gcloud dataproc jobs submit flink",
      "--project=${var.project}",
      "--region=${var.region}",
      "--cluster=${google_dataproc_cluster.flink.name}",
      "--jar=gs://${google_storage_bucket.jobs.name}/${google_storage_bucket_object.sql_runner.name}",
      "--jars=gs://${google_storage_bucket.jobs.name}/${google_storage_bucket_object.kafka_connector.name}",
      "--properties=pipeline.name=boxoffice-analytics",
      "--async",
      "--",
      "gs://${google_storage_bucket.jobs.name}/${google_storage_bucket_object.analytics_sql.name}",
      "--kafka-bootstrap-servers=${var.kafka_bootstrap_servers}",
    ])
  }
}
