"""`kiban identity ...` (verification) and `kiban pki ...` (the test CA and virtual cards)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from cryptography.hazmat.primitives.serialization import Encoding

from kiban.core.errors import KibanError
from kiban.identity import service, testca
from kiban.identity.model import RevocationMode

app = typer.Typer(help="Identity: verify JPKI-style signatures and certificates.", no_args_is_help=True)
pki_app = typer.Typer(help="The test CA and virtual My Number cards (refused in production mode).",
                      no_args_is_help=True)
test_ca_app = typer.Typer(help="The test CA.", no_args_is_help=True)
pki_app.add_typer(test_ca_app, name="test-ca")

CaDir = Annotated[Path, typer.Option("--dir", envvar="KIBAN_TEST_CA_DIR", help="the test CA's directory")]
DEFAULT_CA_DIR = Path("var/test-ca")
DEFAULT_PIN = "KIBANTEST1"  # virtual cards only; production mode refuses them


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _mode() -> str:
    return os.environ.get("KIBAN_MODE", "dev")


@app.command("verify")
def verify(
    trust_anchor: Annotated[list[Path], typer.Option("--trust-anchor", help="PEM or DER root certificate(s)")],
    data: Annotated[Path, typer.Option("--data", help="the signed payload")],
    signature: Annotated[Path, typer.Option("--signature", help="detached CMS SignedData (DER)")],
    crl: Annotated[list[Path] | None, typer.Option("--crl", help="CRL file (PEM or DER); repeatable")] = None,
    revocation: Annotated[str, typer.Option(help="require | soft | off")] = "require",
    fetch_crls: Annotated[bool, typer.Option(help="fetch CRLs from distribution points")] = True,
    policy: Annotated[list[str] | None, typer.Option("--policy", help="required certificate policy OID")] = None,
) -> None:
    """Verify a detached CMS signature: prints JSON; exit 0 valid, 1 invalid, 2 bad usage."""
    try:
        mode = RevocationMode(revocation)
    except ValueError:
        _usage("--revocation must be require, soft or off")
    try:
        result = service.verify_files(trust_anchor, crl or [], data, signature, mode, fetch_crls, policy or [])
    except service.IdentityError as exc:
        _usage(str(exc))
    typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    raise typer.Exit(0 if result.valid else 1)


@test_ca_app.command("init")
def test_ca_init(directory: CaDir = DEFAULT_CA_DIR,
                 crl_url: Annotated[str, typer.Option(help="CRL distribution point written into certificates")]
                 = testca.DEFAULT_CRL_URL,
                 ocsp_url: Annotated[str | None, typer.Option(help="OCSP address written into certificates")] = None,
                 force: Annotated[bool, typer.Option(help="replace an existing CA")] = False) -> None:
    """Create the test root CA (RSA-2048, sha256WithRSAEncryption) and its first CRL."""
    try:
        root = service.TestPki(directory, _mode()).init(crl_url, ocsp_url, force)
    except service.IdentityError as exc:
        _usage(str(exc))
    typer.echo(f"test CA in {directory}: trust anchor {root}, CRL {directory / 'crl.der'}")


@test_ca_app.command("crl")
def test_ca_crl(directory: CaDir = DEFAULT_CA_DIR) -> None:
    """Reissue the CRL (valid one day, as a daily JPKI CRL)."""
    try:
        service.TestPki(directory, _mode()).refresh_crl()
    except service.IdentityError as exc:
        _usage(str(exc))
    typer.echo(f"wrote {directory / 'crl.der'}")


@pki_app.command("issue-card")
def issue_card(
    lgcode: Annotated[str, typer.Option(help="地方公共団体コード of the issuing municipality")],
    resident: Annotated[str, typer.Option(help="the resident's identifier (e.g. 住民票コード)")],
    name: Annotated[str, typer.Option()],
    address: Annotated[str, typer.Option()],
    birth_date: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    sex: Annotated[str, typer.Option(help="1 male, 2 female, 3 not stated")],
    out: Annotated[Path, typer.Option(help="the PKCS#12 virtual card to write")],
    pin: Annotated[str, typer.Option(envvar="KIBAN_CARD_PIN", help="the card file's password")] = DEFAULT_PIN,
    directory: CaDir = DEFAULT_CA_DIR,
) -> None:
    """Issue a virtual card: signing certificate (基本4情報) + authentication certificate."""
    try:
        card = service.TestPki(directory, _mode()).issue_card(lgcode, resident, name, address, birth_date, sex, pin)
    except service.IdentityError as exc:
        _usage(str(exc))
    out.write_bytes(testca.write_card(card, pin))
    out.chmod(0o600)
    typer.echo(json.dumps({"card": str(out), "signing_serial": format(card.signing_cert.serial_number, "X"),
                           "authentication_serial": format(card.auth_cert.serial_number, "X")}))


@pki_app.command("revoke")
def revoke(serial: Annotated[str, typer.Argument(help="certificate serial, hexadecimal")],
           directory: CaDir = DEFAULT_CA_DIR) -> None:
    """Revoke a certificate issued by the test CA and reissue the CRL."""
    try:
        service.TestPki(directory, _mode()).revoke(serial)
    except service.IdentityError as exc:
        _usage(str(exc))
    typer.echo(f"revoked {serial.upper()}; CRL {directory / 'crl.der'}")


@pki_app.command("sign")
def sign(data: Annotated[Path, typer.Argument(help="the payload to sign")],
         card: Annotated[Path, typer.Option(help="the virtual card (PKCS#12)")],
         out: Annotated[Path, typer.Option(help="where to write the detached CMS signature (DER)")],
         pin: Annotated[str, typer.Option(envvar="KIBAN_CARD_PIN")] = DEFAULT_PIN) -> None:
    """Sign DATA with the card's signing key: a detached CMS SignedData, as the card app makes."""
    try:
        payload = data.read_bytes()
    except OSError:
        _usage(f"cannot read {data}")
    try:
        signature = service.sign_with_card(card, pin, payload, _mode())
    except service.IdentityError as exc:
        _usage(str(exc))
    out.write_bytes(signature)
    typer.echo(f"wrote {out}")


# --- linking cards to resident records, and revocation from the registry's changes ----------

def _links() -> tuple[Any, Any]:
    from kiban.clikit import services
    from kiban.identity import linking

    svc = services()
    return svc, linking.for_platform(svc.db, svc.clock, svc.registry, svc.municipalities, svc.settings.mode)


@app.command("link-card")
def link_card(lgcode: Annotated[str, typer.Option(help="地方公共団体コード")],
              card: Annotated[Path, typer.Option(help="the virtual card (PKCS#12)")],
              pin: Annotated[str, typer.Option(envvar="KIBAN_CARD_PIN")] = DEFAULT_PIN) -> None:
    """Link a virtual card to the resident record its 基本4情報 name (as the card app does:
    the authentication certificate signed with the signing key). Exit 1 when not linked."""
    try:
        the_card = testca.read_card(card.read_bytes(), pin)
    except (OSError, ValueError) as exc:
        _usage(f"cannot read the card: {exc}")
    auth = the_card.auth_cert.public_bytes(Encoding.DER)
    signature = testca.sign_detached(auth, the_card.signing_cert, the_card.signing_key)
    svc, links = _links()
    try:
        result = links.link_card(lgcode, auth, signature)
    except (service.IdentityError, KibanError) as exc:
        _usage(str(exc))
    finally:
        svc.db.dispose()
    typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    raise typer.Exit(0 if result.linked else 1)


@app.command("process-changes")
def process_changes(
    lgcode: Annotated[list[str] | None, typer.Option(help="地方公共団体コード (default: every one)")] = None,
    watch: Annotated[float, typer.Option(help="keep polling every N seconds (0: one pass)")] = 0,
) -> None:
    """Read the registry's change feed from the stored cursor and revoke the certificates the
    changes invalidate. Idempotent: safe to run again, or from several workers."""
    svc, links = _links()
    try:
        while True:
            codes = lgcode or [m["lgcode"] for m in svc.municipalities.list()]
            for code in codes:
                typer.echo(json.dumps(links.process_changes(code)))
            if watch <= 0:
                break
            time.sleep(watch)
    except KibanError as exc:
        _usage(exc.en)
    finally:
        svc.db.dispose()


@pki_app.command("export-login-key")
def export_login_key(card: Annotated[Path, typer.Option(help="the virtual card (PKCS#12)")],
                     out: Annotated[Path, typer.Option(help="the JSON file the demo login page reads")],
                     pin: Annotated[str, typer.Option(envvar="KIBAN_CARD_PIN")] = DEFAULT_PIN) -> None:
    """Write the card's authentication certificate and key as the browser's virtual card
    (demo and test mode only)."""
    if _mode() == "production":
        _usage("virtual cards are refused in production mode (KIBAN_MODE=production)")
    try:
        the_card = testca.read_card(card.read_bytes(), pin)
    except (OSError, ValueError) as exc:
        _usage(f"cannot read the card: {exc}")
    out.write_bytes(testca.login_key_json(the_card))
    out.chmod(0o600)
    typer.echo(f"wrote {out}")
