"""The Junction function app: created here, its functions registered from ``triggers``."""

import azure.functions as func

from triggers import api_operations, external, management, run_queue, timers

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(external.bp)
app.register_functions(management.bp)
app.register_functions(run_queue.bp)
app.register_functions(timers.bp)
# Last: its catch-all route {*path} serves the API operations bound to scenarios.
app.register_functions(api_operations.bp)
