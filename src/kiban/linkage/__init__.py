"""情報連携: the inter-agency exchange hub (docs/linkage.md)."""
