"""The `searchsim` console script: one typer app, one module per command."""

from __future__ import annotations

import typer

from cli.calibrate_cmd import calibrate_command
from cli.calibrate_serving_cmd import calibrate_serving_command
from cli.catalog_cmd import catalog_command
from cli.common import DEBUG, stop_on_sigterm
from cli.compare_cmd import compare_command
from cli.cost_cmd import cost_command
from cli.engines_cmd import engines_command
from cli.paper_cmd import paper_command
from cli.passages_cmd import passages_command
from cli.report_cmd import report_command
from cli.run_cmd import run_command
from cli.size_cmd import size_command
from cli.step_cmd import step_command
from cli.sweep_cmd import sweep_command
from cli.trace_cmd import app as trace_app
from cli.validate_cmd import validate_command

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Discrete-event simulator of LLM-powered web search serving.")


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    DEBUG["on"] = debug
    stop_on_sigterm()


app.command("paper")(paper_command)
app.command("catalog")(catalog_command)
app.command("cost")(cost_command)
app.command("run")(run_command)
app.command("compare")(compare_command)
app.command("step")(step_command)
app.add_typer(trace_app, name="trace")
app.command("size")(size_command)
app.command("sweep")(sweep_command)
app.command("report")(report_command)
app.command("calibrate")(calibrate_command)
app.command("calibrate-serving")(calibrate_serving_command)
app.command("engines")(engines_command)
app.command("validate")(validate_command)
app.command("passages")(passages_command)
