terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
  }
  # State in GCS (`terraform init -backend-config=bucket=...`).
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region
}
