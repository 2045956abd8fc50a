variable "name" {
  description = "Instance identifier."
  type        = string
}

variable "instance_class" {
  description = "Instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Storage in GiB."
  type        = number
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the database."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (EKS nodes, the ticket-generator function)."
  type        = list(string)
}

variable "services" {
  description = "Services with a database of their own (one database and one login each)."
  type        = list(string)
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "db" {
  name        = "${var.name}-rds"
  description = "RDS PostgreSQL of boxoffice: from the EKS nodes and the ticket generator only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from boxoffice's services"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

module "key" {
  source      = "../kms"
  description = "${var.name} database storage, insights and secrets"
}

resource "aws_db_parameter_group" "this" {
  name   = var.name
  family = "postgres16"
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }
}

data "aws_iam_policy_document" "assume_monitoring" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.assume_monitoring.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier                            = var.name
  engine                                = "postgres"
  engine_version                        = "16.4"
  instance_class                        = var.instance_class
  allocated_storage                     = var.allocated_storage
  max_allocated_storage                 = var.allocated_storage * 10
  storage_type                          = "gp3"
  storage_encrypted                     = true
  kms_key_id                            = module.key.arn
  db_name                               = "boxoffice"
  username                              = "boxoffice_admin"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = module.key.arn
  multi_az                              = true
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  parameter_group_name                  = aws_db_parameter_group.this.name
  publicly_accessible                   = false
  iam_database_authentication_enabled   = true
  backup_retention_period               = 14
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${var.name}-final"
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.key.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
}

# One login per service, its password generated here; the database URL each service reads
# (BOXOFFICE_<SERVICE>_DATABASE_URL) is kept in Secrets Manager, from where External Secrets makes the
# Kubernetes Secret boxoffice-databases. The logins and databases themselves are created once with the
# admin secret (deploy/README.md, "PostgreSQL logins").
resource "random_password" "service" {
  for_each = toset(var.services)
  length   = 40
  special  = false
}

resource "aws_secretsmanager_secret" "url" {
  #checkov:skip=CKV2_AWS_57:the password belongs to a PostgreSQL login that only the admin can rotate; rotate by re-applying with a new random_password keeper
  for_each   = toset(var.services)
  name       = "${var.name}/database-url/${each.key}"
  kms_key_id = module.key.arn
}

resource "aws_secretsmanager_secret_version" "url" {
  for_each      = toset(var.services)
  secret_id     = aws_secretsmanager_secret.url[each.key].id
  secret_string = "postgresql+asyncpg://${each.key}:${random_password.service[each.key].result}@${aws_db_instance.this.endpoint}/${each.key}?ssl=require"
}

output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "url_secret_arns" {
  description = "Secret ARN of each service's database URL."
  value       = { for name, secret in aws_secretsmanager_secret.url : name => secret.arn }
}

output "tickets_database_url" {
  description = "The tickets service's database URL (the ticket-generator function writes its verdicts there)."
  value       = aws_secretsmanager_secret_version.url["tickets"].secret_string
  sensitive   = true
}
