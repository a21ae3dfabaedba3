"""Run the project's mains as a user does, minus the interpreter's start.

Importing torch, Lightning and Hydra takes about five seconds per process, most of an end-to-end test on a
tiny config. This process imports them once, then forks a child per request: the child takes the request's
working folder, argv and output files and runs `python -m vrnn_lightning.<main>` as `__main__`, exactly the
code path of the command line. Requests and exit statuses are JSON lines on stdin and stdout.
"""

import atexit
import json
import os
import runpy
import sys
import traceback

import hydra  # noqa: F401  the slow imports, once
import lightning  # noqa: F401
import torch  # noqa: F401

import vrnn_lightning.training.module  # noqa: F401


def exit_code(err: SystemExit) -> int:
    if err.code is None:
        return 0
    if isinstance(err.code, int):
        return err.code
    print(err.code, file=sys.stderr)
    return 1


def run_child(request: dict) -> None:
    """In the forked child: become `python -m vrnn_lightning.<main> <overrides>` and exit with its status."""
    os.chdir(request["cwd"])
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    module = f"vrnn_lightning.{request['main']}"
    sys.argv = [module, *request["overrides"]]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as err:
        code = exit_code(err)
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what the interpreter does at exit: flush log files, close writers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            run_child(json.loads(line))
        _, status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)


if __name__ == "__main__":
    serve()
