# A customer-managed key with rotation and an explicit policy: the account administers it, and (when asked)
# CloudWatch Logs of this region may use it for the log groups it encrypts.
variable "description" {
  description = "What the key protects."
  type        = string
}

variable "logs" {
  description = "Whether CloudWatch Logs may use the key (for encrypted log groups)."
  type        = bool
  default     = false
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:in a key policy the resource "*" is this key alone, and the account root is the key's administrator (AWS's default key policy)
  #checkov:skip=CKV_AWS_356:in a key policy the resource "*" is this key alone
  #checkov:skip=CKV_AWS_109:the account administers its own key (AWS's default key policy); IAM policies then grant use per role
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  dynamic "statement" {
    for_each = var.logs ? [1] : []
    content {
      sid       = "CloudWatchLogs"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
      }
      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:aws:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  description         = var.description
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

output "arn" {
  description = "The key's ARN."
  value       = aws_kms_key.this.arn
}
