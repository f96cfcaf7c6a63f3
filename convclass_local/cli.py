"""``convclass-local``: the whole pipeline on an embedded AWS on this machine (development only).

It lives beside the product, not in it: no image ships this package, and the ``convclass`` operator CLI never
imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="convclass-local",
    no_args_is_help=True,
    add_completion=False,
    help="Run convclass on an embedded AWS on this machine.",
)


@app.command("demo")
def demo(
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Ask before each approval gate instead of approving.")
    ] = False,
    emails: Annotated[
        int, typer.Option("--emails", min=100, help="Labelled emails in the sample tenant.")
    ] = 3000,
    workdir: Annotated[
        Path,
        typer.Option("--workdir", help="Everything the run creates lives here; delete it to start over."),
    ] = Path(".convclass"),
    inbound: Annotated[int, typer.Option("--inbound", min=1, max=500, help="New emails to classify.")] = 8,
    feedback: Annotated[
        int,
        typer.Option(
            "--feedback",
            min=0,
            max=2000,
            help="Act three: emails of a shifted stream that agents confirm (0: no third act).",
        ),
    ] = 120,
    shared_emails: Annotated[
        int,
        typer.Option(
            "--shared-emails",
            min=0,
            max=20000,
            help="Act four: labelled emails of each of two small tenants that share one endpoint (0: no "
            "fourth act).",
        ),
    ] = 600,
) -> None:
    """Train, approve, deploy and classify for a sample tenant on an embedded AWS, let agents' feedback
    start a retraining run, then put two small tenants on the shared endpoint (what `make demo` runs)."""
    from convclass_local.demo import DemoOptions, run_demo

    options = DemoOptions(
        workdir=workdir,
        emails=emails,
        inbound=inbound,
        feedback=feedback,
        shared_emails=shared_emails,
        interactive=interactive,
    )
    code = run_demo(options)
    if code:
        raise typer.Exit(code=code)


@app.command("console")
def console_command(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="The work directory a `convclass-local demo` ran in.")
    ] = Path(".convclass"),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8765,
) -> None:
    """Serve the customer console against the embedded AWS of a demo; prints a sign-in URL per tenant."""
    from convclass_local.console import serve
    from convclass_local.runtime import LocalRuntime

    with LocalRuntime(workdir=workdir) as runtime:
        serve(runtime, port=port, console=Console())


def main() -> None:
    app()
