"""Standard forms (帳票) as PDF: pure renderers over plain data, plus signing and verification."""
