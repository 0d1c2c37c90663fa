"""The ``stoichnet`` command line: thin, parses arguments, calls the layers below,
decides where files go."""

from __future__ import annotations

import sys

import click

from stoichnet import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stoichnet")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """stoichnet: neural networks from first principles for materials properties
    from composition, side by side with a random-forest baseline."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Console entry point: a one-line error and a non-zero exit on bad input,
    the traceback only with ``--debug``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="stoichnet", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (ValueError, TypeError, OSError, KeyError) as exc:
        if "--debug" in args:
            raise
        click.echo(f"Error: {exc}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
