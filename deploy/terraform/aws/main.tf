# boxoffice on AWS: a VPC, EKS for the services (deploy/k8s/overlays/aws), MSK for the bus, RDS PostgreSQL
# for the services' databases, S3 for tickets and uploads with the ticket-generator Lambda on objects
# created under uploads/ (its own output goes to tickets/, which triggers nothing), and ECR for the image.
locals {
  name = "boxoffice-${var.environment}"
}

module "network" {
  source             = "./modules/network"
  name               = local.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
}

module "eks" {
  source              = "./modules/eks"
  name                = local.name
  kubernetes_version  = var.kubernetes_version
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  node_instance_types = var.node_instance_types
  node_count          = var.node_count
  admin_arns          = var.cluster_admin_arns
}

module "msk" {
  source                    = "./modules/msk"
  name                      = local.name
  kafka_version             = var.kafka_version
  instance_type             = var.kafka_instance_type
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.node_security_group_id]
}

module "rds" {
  source                    = "./modules/rds"
  services                  = var.database_services
  name                      = local.name
  instance_class            = var.db_instance_class
  allocated_storage         = var.db_allocated_storage
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.eks.node_security_group_id, module.storage.lambda_security_group_id]
}

module "ecr" {
  source = "./modules/ecr"
  name   = "boxoffice"
}

module "storage" {
  source            = "./modules/storage"
  name              = local.name
  lambda_zip        = var.lambda_zip
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.private_subnet_ids
  database_url      = module.rds.tickets_database_url
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  service_account   = "boxoffice:tickets"
}
