"""Helpers of the operations tests (tests/e2e/test_ops_*.py): the metrics address of a
running chatd, a bounded HTTP GET, and a scrape parsed by prometheus_client's parser."""

from __future__ import annotations

import asyncio
import json
import os
import re

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import CHATD, LISTENING, TIMEOUT, Chatd

METRICS_ADDRESS = re.compile(r"metrics http://127\.0\.0\.1:(\d+)/metrics")


def metrics_port(chatd: Chatd) -> int:
    """The port of --metrics 127.0.0.1:0, from the listening line of the log."""
    for line in chatd.log:
        if found := METRICS_ADDRESS.search(line):
            return int(found.group(1))
    raise AssertionError("no metrics address in the log:\n" + "\n".join(chatd.log[-5:]))


async def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of GET path on 127.0.0.1:port; the server closes after answering."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                            TIMEOUT)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    """Every sample of /metrics: {(name, sorted labels): value}."""
    status, body = await http_get(port, "/metrics")
    assert status == 200, body
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled counter that has not counted yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class JsonLogChatd(Chatd):
    """A chatd whose log is JSON lines (--log-format json): the listening line is read
    out of the JSON object's message."""

    async def start(self) -> JsonLogChatd:
        env = {**os.environ, **(self.env or {})}
        self.proc = await asyncio.create_subprocess_exec(
            CHATD, *self.args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.create_task(self._read_log())
        message = json.loads(await self.wait_log(LISTENING))["message"]
        self.port = int(message.partition(LISTENING)[2].split(", ")[0].rpartition(":")[2])
        return self
