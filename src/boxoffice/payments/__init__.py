"""payments: payment intents, charges and refunds, behind a card processor port."""
