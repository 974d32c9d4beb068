"""What the tests share; this package holds no tests, and no test module imports another.

Where a test goes:
  tests/unit/     a pure part (codec, link, hub, limits, store, chatc's session, ...), fed
                  values and a clock; no network socket (tests/unit/conftest.py refuses
                  one). `make unit`.
  tests/e2e/      real chatd processes on loopback, with real clients: JSON (harness.Client),
                  nc (nc.Nc), chatc in tmux (chatc.Screen), Chromium (web.ChatPage), redis.
                  `make e2e`; `make test` runs both, in parallel (pytest-xdist).

The helpers:
  harness        Chatd (a chatd subprocess, its log), Client, RedisServer, trio, is_join
  server_opts    chatd options with the limits off; small-buffer sockets
  chatc          chatc in a tmux pane (Screen), a cuttable Proxy, line-mode helpers
  nc             the real nc on pipes (fixture open_nc)
  web            chatd --web, WebSocket helpers, the page in Chromium (fixtures start_web,
                 browser, cutter_factory)
  hub_world      a hub on a LocalBus with per-peer inboxes (unit tests of the hub)
  replay         replays the hub's effects as chatd.server does
  colour_science CIEDE2000 and contrast, to check the palette
  name_colours   steps of names coming and going, and the colours chatc gives them
  faulty_chatd   chatd with a planted fault, for the test of the harness's health check

Every chatd a test starts is checked after the test (tests/conftest.py, chatd_health): an
internal error or traceback in its log, or an unexpected exit status, fails the test.
"""
