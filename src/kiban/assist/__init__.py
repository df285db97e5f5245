"""The shared multilingual assistant (AIお問い合わせ): docs/assist.md."""
