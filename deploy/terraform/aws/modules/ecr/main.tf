variable "name" {
  description = "Repository name."
  type        = string
}

module "key" {
  source      = "../kms"
  description = "${var.name} image repository"
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE" # a tag names one image for ever; overlays pin tags
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.key.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 50 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}

output "repository_url" {
  description = "Where the boxoffice image is pushed."
  value       = aws_ecr_repository.this.repository_url
}
