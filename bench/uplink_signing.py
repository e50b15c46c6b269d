"""Cost of signed uplink (edge `mqtt.signing_key_file`, central `edge_keys`) per reading,
against the work the same batch costs unsigned, measured in the same run.

    python -m bench.uplink_signing [--batches 400] [--batch 500]

Best of three runs each. Edge: `encode_batch_raw` of stored record JSON (what the uplink
does per batch) against the same plus `Signer.seal`. Central: `decode` of the batch (what
ingest does) against `Verifier.unseal` plus `decode` of the inner batch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from protocols.signing import Signer, Verifier, generate_private_key_pem
from protocols.wire import Sample, StreamId, decode, encode_batch_raw, encode_record

TOPIC = "gg/v1/site-1/edge-1/telemetry"


def _payloads(batches: int, batch: int) -> list[tuple[int, list[str]]]:
    out = []
    for b in range(batches):
        first = b * batch + 1
        out.append((first - 1, [encode_record(Sample(
            s, 1_790_000_000_000 + s, f"m{s % 50}", "power_w", 1000.0 + s % 7, "W"))
            for s in range(first, first + batch)]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    stream = StreamId("edge-1", 1)
    signer = Signer(generate_private_key_pem())
    verifier = Verifier(signer.public_key)
    work = _payloads(args.batches, args.batch)
    readings = args.batches * args.batch

    def encode_all() -> list[bytes]:
        return [encode_batch_raw(stream, after=after, seq=after + len(rs), sent=0,
                                 synced=True, records_json=rs) for after, rs in work]

    def seal_all() -> list[bytes]:
        return [signer.seal(TOPIC, p, 0) for p in encode_all()]

    def best(step: Callable[[], object], repeats: int = 3) -> float:
        """The fastest of a few runs: the machine is shared, the minimum is the cost."""
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return min(times)

    plain, sealed = encode_all(), seal_all()
    for p in plain:  # warm the decoder's caches of known ids and names
        decode(p)
    encode_s, seal_s = best(encode_all), best(seal_all)
    decode_s = best(lambda: [decode(p) for p in plain])
    unseal_s = best(lambda: [decode(verifier.unseal(TOPIC, p)) for p in sealed])

    def us(seconds: float) -> float:
        return seconds / readings * 1e6

    size = sum(map(len, sealed)) / sum(map(len, plain))
    print(f"{readings} readings in batches of {args.batch}")
    print(f"edge    encode {us(encode_s):.3f} µs/reading, encode+seal {us(seal_s):.3f} "
          f"µs/reading: +{us(seal_s - encode_s):.3f} µs (ratio {seal_s / encode_s:.2f})")
    print(f"central decode {us(decode_s):.3f} µs/reading, unseal+decode {us(unseal_s):.3f} "
          f"µs/reading: +{us(unseal_s - decode_s):.3f} µs (ratio {unseal_s / decode_s:.2f})")
    print(f"payload size ratio sealed/plain {size:.3f}")


if __name__ == "__main__":
    main()
