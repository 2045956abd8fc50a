variable "name" {
  description = "Cluster name."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version."
  type        = string
}

variable "instance_type" {
  description = "Broker instance type."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one broker in each."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the brokers (the EKS nodes)."
  type        = list(string)
}

resource "aws_security_group" "brokers" {
  name        = "${var.name}-msk"
  description = "MSK brokers of boxoffice: Kafka from the EKS nodes only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.brokers.id
  description                  = "Kafka (plaintext 9092, TLS 9094) from boxoffice's services"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9094
}

module "key" {
  source      = "../kms"
  description = "${var.name} MSK storage and logs"
  logs        = true
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/${var.name}/msk"
  retention_in_days = 365
  kms_key_id        = module.key.arn
}

resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  # The bus creates its topics with BOXOFFICE_BUS_PARTITIONS partitions; three copies, two in sync.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=8
    log.retention.hours=168
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = length(var.subnet_ids)

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.brokers.id]
    storage_info {
      ebs_storage_info {
        volume_size = 500
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = module.key.arn
    encryption_in_transit {
      #checkov:skip=CKV_AWS_81:boxoffice's Kafka client settings have no TLS options yet (platform/settings.py); brokers are reachable from the nodes' security group only, inside private subnets. Switch to TLS with the client.
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
}

output "bootstrap_brokers_tls" {
  description = "Broker addresses (plaintext listener until the client speaks TLS; see the skip above)."
  value       = aws_msk_cluster.this.bootstrap_brokers
}
