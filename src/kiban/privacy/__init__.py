"""Personal-information protection and data utilisation (個人情報保護法, issue 9): purpose-bound
access records, the 個人情報ファイル簿, 行政機関等匿名加工情報 and differentially private
statistics."""
