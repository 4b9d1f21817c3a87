import contextlib, io, json, math, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, '/tmp/review_eor'); warnings.simplefilter('ignore')
from mexplore.store import journal as NJ, table as NT
from oldimpl import journal as OJ, table as OT
sys.path.insert(0, '/tmp/review_eor'); from fuzz import compare_frames, run
P = Path('/tmp/review_eor/t.jsonl')
def case(name, data, objectives=('objective',), block=200):
    P.write_bytes(data if isinstance(data, bytes) else data.encode())
    NJ._BLOCK_BYTES = block
    o = run(OJ, OT, P, objectives, []); n = run(NJ, NT, P, objectives, [])
    p = compare_frames(o[0], n[0])
    print(f'== {name}: frame {"SAME" if not p else "DIFF: " + p[:400]}; records {"SAME" if repr(o[1]) == repr(n[1]) else "DIFF"}; stderr {"SAME" if o[3] == n[3] else "DIFF"}')
    if o[3] != n[3]: print('   old err:', o[3].replace(str(P), 'J').strip()[:300]); print('   new err:', n[3].replace(str(P), 'J').strip()[:300])
    if repr(o[1]) != repr(n[1]): print('   old recs:', repr(o[1])[:200]); print('   new recs:', repr(n[1])[:200])
    return o, n
L = lambda *recs: ''.join(json.dumps(r) + '\n' for r in recs)
r = lambda i, **kw: {'id': i, 'status': 'ok', 'params': {}, **kw}
case('objective named m:loss + metric loss', L(r(0, objective=1.0, metrics={'loss': 5.0}), r(1, objective=2.0)), ('m:loss',))
case('objective named p:x + param x', L(r(0, objective=1.0, params={'x': 7}), r(1, objective=2.0)), ('p:x',))
case('UTF-8 BOM on line 1', b'\xef\xbb\xbf' + L(r(0), r(1)).encode())
doc = json.dumps(r(5), separators=(',', ':'))
case('UTF-16-BE line with trailing NUL', L(r(0)).encode() + doc.encode('utf-16-be') + b'\x00\n' + L(r(1)).encode())
case('raw CR inside a line (whitespace)', L(r(0)) + '{"id": 1,\r"status": "ok", "params": {}}\n' + L(r(2)) + '{"id": 3, "status": "ok", "par\n')
case('NBSP-only line / FS-only line', L(r(0)) + '\u00a0\n\x1c\n' + L(r(1)))
case('params missing', L(r(0), {'id': 1, 'status': 'ok'}))
case('status list', L(r(0), {'id': 1, 'status': ['ok'], 'params': {}}))
case('invalid UTF-8 byte', L(r(0)).encode() + b'{"id": 1, "status": "ok", "params": {"s": "\xff"}}\n')
# dtype merging across blocks
pad = 'x' * 150
case('int block then float block', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': i + .5, 'pad': pad}) for i in range(3, 6)]), block=100)
case('int then absent', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'pad': pad}) for i in range(3, 6)]), block=100)
case('absent then int', L(*[r(i, params={'pad': pad}) for i in range(3)], *[r(i, params={'a': i, 'pad': pad}) for i in range(3, 6)]), block=100)
case('int then bool', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': True, 'pad': pad}) for i in range(3, 6)]), block=100)
case('bool then absent', L(*[r(i, params={'a': False, 'pad': pad}) for i in range(3)], *[r(i, params={'pad': pad}) for i in range(3, 6)]), block=100)
case('int64 then uint64-range', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': 2**64 - 1, 'pad': pad}) for i in range(3, 6)]), block=100)
case('int64 then >2^64', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': 2**70, 'pad': pad}) for i in range(3, 6)]), block=100)
case('big int64 then float', L(*[r(i, params={'a': 2**63 - 1 - i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': .5, 'pad': pad}) for i in range(3, 6)]), block=100)
case('ints then None', L(*[r(i, params={'a': i, 'pad': pad}) for i in range(3)], *[r(i, params={'a': None, 'pad': pad}) for i in range(3, 6)]), block=100)
case('str then absent', L(*[r(i, params={'a': 'q', 'pad': pad}) for i in range(3)], *[r(i, params={'pad': pad}) for i in range(3, 6)]), block=100)
case('new column later block', L(*[r(i, params={'pad': pad}) for i in range(3)], *[r(i, params={'pad': pad, 'z': 1}, kind='k', metrics={'m': 1}) for i in range(3, 6)]), block=100)
case('empty journal', '')
case('only damaged', 'xx\n\n[1]\n')
case('multi-objective short lists', L(r(0, objective=[1.0]), r(1, objective=[1.0, 2.0, 3.0]), r(2, objective=None), r(3, objective=[])), ('a', 'b'))
case('objective "NaN" strings in a list', L(r(0, objective=['NaN', 1.0]), r(1, objective=['-Infinity', 'x'])), ('a', 'b'))
