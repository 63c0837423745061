"""The Junction function app: created here, its functions registered from ``triggers``."""

import azure.functions as func

from triggers import api_operations, console, external, health, management, run_queue, schedules, timers

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(console.bp)
app.register_functions(external.bp)
app.register_functions(health.bp)
app.register_functions(management.bp)
app.register_functions(run_queue.bp)
app.register_functions(schedules.bp)
app.register_functions(timers.bp)
# Its catch-all route {*path} serves the API operations bound to scenarios. Registration order does
# not matter to the host (it tries routes by function name); see the rule in triggers/api_operations.py.
app.register_functions(api_operations.bp)
