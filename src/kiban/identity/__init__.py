"""Identity on the My Number card model (JPKI): trust anchors, certificate path validation,
revocation, detached CMS signature verification, and the test CA with virtual cards."""
