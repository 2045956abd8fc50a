variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the ticket-generator bundle (boxoffice package-lambda OUT.zip)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the function runs in (to reach the database)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the function."
  type        = list(string)
}

variable "database_url" {
  description = "The tickets database URL the function records verdicts in."
  type        = string
  sensitive   = true
}

variable "oidc_provider_arn" {
  description = "EKS OIDC provider (IRSA) for the tickets service account's role."
  type        = string
}

variable "oidc_issuer" {
  description = "EKS OIDC issuer without scheme."
  type        = string
}

variable "service_account" {
  description = "namespace:name of the tickets service's Kubernetes service account."
  type        = string
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

module "key" {
  source      = "../kms"
  description = "${var.name} uploads, tickets and the function's environment"
  logs        = true
}

# Uploads (ID proofs, uploads/...) and tickets (PDFs and receipts, tickets/...).
resource "aws_s3_bucket" "objects" {
  #checkov:skip=CKV_AWS_144:one region is enough for tickets that are re-rendered from the database; versioning and backups cover mistakes
  #checkov:skip=CKV2_AWS_62:the one event notification the bucket needs is the Lambda's below (checkov does not see notifications made by aws_s3_bucket_notification)
  bucket = "${var.name}-objects-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket                  = aws_s3_bucket.objects.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "objects" {
  bucket = aws_s3_bucket.objects.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    id     = "old-versions-and-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_144:access logs are kept in the region they describe
  #checkov:skip=CKV_AWS_18:this is the access-log bucket; logging it into itself would loop
  #checkov:skip=CKV2_AWS_62:nothing needs to react to new access-log objects; they are read when investigating
  bucket = "${var.name}-access-logs-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = module.key.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 365
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_logging" "objects" {
  bucket        = aws_s3_bucket.objects.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "objects/"
}

# The ticket generator: boxoffice.tickets.functions.handle on every object created under uploads/. Its own
# output goes under tickets/ and is outside the filter, so it never triggers itself (the handler skips
# tickets/ keys as well). Failed events go to a dead-letter queue after Lambda's two retries.
resource "aws_sqs_queue" "dead_letters" {
  name                       = "${var.name}-ticket-generator-dlq"
  kms_master_key_id          = module.key.arn
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 300
}

resource "aws_security_group" "function" {
  name        = "${var.name}-ticket-generator"
  description = "The ticket-generator function: out to PostgreSQL and to S3 (HTTPS) only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.function.id
  description       = "S3 and KMS over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "postgres" {
  security_group_id = aws_security_group.function.id
  description       = "The tickets database"
  cidr_ipv4         = "10.0.0.0/8"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-ticket-generator"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_iam_role_policy_attachment" "function_vpc" {
  role       = aws_iam_role.function.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# Least privilege: read uploads, write receipts, nothing else in the bucket.
data "aws_iam_policy_document" "function" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.objects.arn}/uploads/*"]
  }
  statement {
    sid       = "WriteReceipts"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.objects.arn}/tickets/*"]
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.key.arn]
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }
  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "ticket-generator"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}-ticket-generator"
  retention_in_days = 365
  kms_key_id        = module.key.arn
}

resource "aws_lambda_function" "ticket_generator" {
  #checkov:skip=CKV_AWS_272:the bundle is built and uploaded by the release pipeline from the tagged commit; code signing needs a signing profile this repository cannot hold
  function_name                  = "${var.name}-ticket-generator"
  role                           = aws_iam_role.function.arn
  runtime                        = "python3.11"
  handler                        = "boxoffice.tickets.functions.handle"
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  memory_size                    = 512
  timeout                        = 60
  reserved_concurrent_executions = 20 # at most 20 connections to the tickets database
  kms_key_arn                    = module.key.arn

  environment {
    variables = {
      BOXOFFICE_OBJECT_STORE         = "s3"
      BOXOFFICE_S3_BUCKET            = aws_s3_bucket.objects.id
      BOXOFFICE_S3_REGION            = data.aws_region.current.name
      BOXOFFICE_TICKETS_DATABASE_URL = var.database_url
      BOXOFFICE_DATA_DIR             = "/tmp/boxoffice"
      BOXOFFICE_LOG_JSON             = "1"
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.function.id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters.arn
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy_attachment.function_vpc]
}

resource "aws_lambda_permission" "s3" {
  statement_id   = "s3-object-created"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.ticket_generator.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.objects.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "objects" {
  bucket = aws_s3_bucket.objects.id
  lambda_function {
    id                  = "ticket-generator-trigger"
    lambda_function_arn = aws_lambda_function.ticket_generator.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "uploads/"
  }
  depends_on = [aws_lambda_permission.s3]
}

# The tickets service (IRSA): its own prefixes, nothing else.
data "aws_iam_policy_document" "assume_tickets" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "tickets" {
  name               = "${var.name}-tickets"
  assume_role_policy = data.aws_iam_policy_document.assume_tickets.json
}

data "aws_iam_policy_document" "tickets" {
  statement {
    sid       = "Objects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.objects.arn}/uploads/*", "${aws_s3_bucket.objects.arn}/tickets/*"]
  }
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.objects.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["uploads/*", "tickets/*"]
    }
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.key.arn]
  }
}

resource "aws_iam_role_policy" "tickets" {
  name   = "tickets-objects"
  role   = aws_iam_role.tickets.id
  policy = data.aws_iam_policy_document.tickets.json
}

output "bucket_name" {
  description = "The objects bucket."
  value       = aws_s3_bucket.objects.id
}

output "function_name" {
  description = "The ticket-generator function."
  value       = aws_lambda_function.ticket_generator.function_name
}

output "lambda_security_group_id" {
  description = "Security group of the function (allowed into RDS)."
  value       = aws_security_group.function.id
}

output "tickets_role_arn" {
  description = "Role of the tickets service account."
  value       = aws_iam_role.tickets.arn
}
