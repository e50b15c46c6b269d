"""Commissioning on site, without the central: `greenguard edge probe | scan | read`.

A facilities engineer wiring a meter wants to see one register before trusting a
dashboard. These commands talk to the devices through the same hubs and codecs as the
agent (one owner per bus, the same timeouts, frame gaps and RTU/DL/T 645/CJ/T 188 framing),
print what went over the wire next to what it decodes to, and never touch the outbox, the
broker or the central.

- `probe` (probe.py): every configured point once: raw registers or frame, decoded value,
  unit, time and error per point; warns on register maps that are all `verified: false`.
- `scan` (scan.py): Modbus unit ids on a gateway or an RS-485 line (trying serial
  settings), the DL/T 645 and CJ/T 188 read-address broadcasts; `--write-config` turns
  what it found into an edge.yaml fragment (fragment.py).
- `read` (read.py): one register range in every type and word order, or one DL/T 645 data
  identifier, to build or check a register map.
"""
