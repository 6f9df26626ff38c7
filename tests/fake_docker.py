#!/usr/bin/python3
"""A fake `docker` for the Swarm tests: the command contract written at the
top of src/pipeline/swarm.rs, and nothing more. No engine is needed.

It keeps its state in the directory it is installed in (next to itself):

- calls.jsonl: every call's argv (without argv[0]), one JSON array a line,
  appended before anything else happens;
- states.json: a JSON array of `docker service inspect` documents, played
  in order, one per inspect call, the last one repeated; a document that is
  the string "missing" is a service that does not exist;
- inspected: how many inspect calls were answered so far;
- update_fails: when present, `docker service update` prints its text on
  stderr and exits 1.

Accepted calls (anything else exits 2 and says so on stderr):

    service inspect --format {{json .}} SERVICE
    service update --rollback --detach SERVICE
    service update --detach --image=IMAGE SERVICE
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def refuse(why):
    sys.stderr.write("fake docker: %s: %s\n" % (why, " ".join(sys.argv[1:])))
    sys.exit(2)


def inspect(service):
    with open(path("states.json")) as f:
        states = json.load(f)
    try:
        with open(path("inspected")) as f:
            seen = int(f.read().strip() or "0")
    except FileNotFoundError:
        seen = 0
    # Renamed into place: a call killed at its time limit never leaves the
    # counter empty (which would replay the first state).
    with open(path("inspected.new"), "w") as f:
        f.write(str(seen + 1))
    os.replace(path("inspected.new"), path("inspected"))
    document = states[min(seen, len(states) - 1)]
    if document == "missing":
        sys.stderr.write("Error: no such service: %s\n" % service)
        sys.exit(1)
    print(json.dumps(document))


def update(service):
    try:
        with open(path("update_fails")) as f:
            sys.stderr.write(f.read())
        sys.exit(1)
    except FileNotFoundError:
        print(service)


def main():
    args = sys.argv[1:]
    with open(path("calls.jsonl"), "a") as f:
        f.write(json.dumps(args) + "\n")
    if args[:2] == ["service", "inspect"] and args[2:4] == ["--format", "{{json .}}"] and len(args) == 5:
        inspect(args[4])
    elif args[:2] == ["service", "update"] and args[2:4] == ["--rollback", "--detach"] and len(args) == 5:
        update(args[4])
    elif (
        args[:3] == ["service", "update", "--detach"]
        and len(args) == 5
        and args[3].startswith("--image=")
        and len(args[3]) > len("--image=")
    ):
        update(args[4])
    else:
        refuse("not part of the contract")


main()
