"""The opcode loop of :class:`mmseg_contrast.checkpoint.pickle_scan.
PickleScan`: the opcodes of torch's weights-only unpickler
(``torch/_weights_only_unpickler.py``), with the same stack, mark and memo
semantics, on stand-in values."""
import pickle
import struct

from .scan_values import (
    _G,
    ENTRY,
    MEMO,
    OBJ,
    PICKLE_FACTOR,
    SHORT,
    SLOT,
    TENSOR,
    ScanRefusal,
    _Blob,
    _Box,
    _Stop,
    as_args,
)

__all__ = ['walk']

(APPEND, APPENDS, BINFLOAT, BINGET, BININT, BININT1, BININT2, BINPERSID,
 BINPUT, BINUNICODE, BUILD, EMPTY_DICT, EMPTY_LIST, EMPTY_SET, EMPTY_TUPLE,
 GLOBAL, LONG1, LONG_BINGET, LONG_BINPUT, MARK, NEWFALSE, NEWOBJ, NEWTRUE,
 NONE, PROTO, REDUCE, SETITEM, SETITEMS, SHORT_BINSTRING, STOP, TUPLE, TUPLE1,
 TUPLE2, TUPLE3) = (getattr(pickle, n)[0] for n in (
     'APPEND', 'APPENDS', 'BINFLOAT', 'BINGET', 'BININT', 'BININT1',
     'BININT2', 'BINPERSID', 'BINPUT', 'BINUNICODE', 'BUILD', 'EMPTY_DICT',
     'EMPTY_LIST', 'EMPTY_SET', 'EMPTY_TUPLE', 'GLOBAL', 'LONG1',
     'LONG_BINGET', 'LONG_BINPUT', 'MARK', 'NEWFALSE', 'NEWOBJ', 'NEWTRUE',
     'NONE', 'PROTO', 'REDUCE', 'SETITEM', 'SETITEMS', 'SHORT_BINSTRING',
     'STOP', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3'))
_U32 = struct.Struct('<I').unpack_from
_I32 = struct.Struct('<i').unpack_from
_U16 = struct.Struct('<H').unpack_from
_F64 = struct.Struct('>d').unpack_from
#: UTF-8 bytes that code points up to U+00FF use (others: 0xC4 and up)
_NARROW = bytes(range(0xC4))
_CHUNK = 16 << 20
_NOT_LIST = ('dict', 'set', 'range', 'ndarray', 'tensor', 'storage',
             'cfgdict', 'obj')
_STR = 56


def _str_cost(s):
    return _STR + len(s) * (1 if s.isascii() else 4)


def _is_wide(buf, start, end):
    """Whether the UTF-8 text ``buf[start:end]`` has a code point above
    U+00FF (CPython then stores 2 or 4 bytes per character)."""
    for i in range(start, end, _CHUNK):
        if buf[i:min(i + _CHUNK, end)].translate(None, _NARROW):
            return True
    return False


def walk(scan, start, end):
    """Walk the pickle at ``buf[start:end]``; return the offset after STOP.

    Raises:
        ScanRefusal: over the budget or unboundable (see PickleScan).
        _Stop: torch's unpickler fails at this point as well.
    """
    buf = scan.buf
    stack, metastack, memo = [], [], {}
    cost, biggest, what = scan.cost, 0, None
    base = scan.limit - PICKLE_FACTOR * scan.start
    pos = start
    try:
        while True:
            if pos >= end:
                raise _Stop
            op = buf[pos]
            pos += 1
            if op == LONG_BINPUT or op == BINPUT:
                if op == BINPUT:
                    idx = buf[pos]
                    pos += 1
                else:
                    idx = _U32(buf, pos)[0]
                    pos += 4
                memo[idx] = stack[-1]
                cost += MEMO
            elif op == BININT1:
                stack.append(buf[pos])
                pos += 1
                cost += SLOT
            elif op == BINGET or op == LONG_BINGET:
                if op == BINGET:
                    idx = buf[pos]
                    pos += 1
                else:
                    idx = _U32(buf, pos)[0]
                    pos += 4
                stack.append(memo[idx])
                cost += SLOT
            elif op == MARK:
                metastack.append(stack)
                stack = []
                cost += OBJ
            elif op == TUPLE:
                items = stack
                stack = metastack.pop()
                stack.append(tuple(items))
                cost += OBJ + SLOT * len(items)
            elif op == TUPLE1:
                stack[-1] = (stack[-1], )
                cost += OBJ
            elif op == TUPLE2:
                stack[-2:] = [(stack[-2], stack[-1])]
                cost += OBJ
            elif op == TUPLE3:
                stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
                cost += OBJ
            elif op == BINUNICODE or op == SHORT_BINSTRING:
                if op == BINUNICODE:
                    n = _U32(buf, pos)[0]
                    pos += 4
                else:
                    n = buf[pos]
                    pos += 1
                if pos + n > end:
                    raise _Stop
                if n <= SHORT:
                    try:
                        s = str(buf[pos:pos + n], 'utf-8', 'surrogatepass')
                    except UnicodeDecodeError:
                        raise _Stop from None
                    stack.append(s)
                    cost += _str_cost(s)
                else:
                    wide = _is_wide(buf, pos, pos + n)
                    stack.append(_Blob('str', n))
                    cost += _STR + n * (4 if wide else 1)
                pos += n
            elif op == EMPTY_TUPLE:
                stack.append(())
                cost += SLOT
            elif op == NONE or op == NEWFALSE or op == NEWTRUE:
                stack.append(None if op == NONE else op == NEWTRUE)
                cost += SLOT
            elif op == BININT:
                stack.append(_I32(buf, pos)[0])
                pos += 4
                cost += OBJ
            elif op == BININT2:
                stack.append(_U16(buf, pos)[0])
                pos += 2
                cost += OBJ
            elif op == BINFLOAT:
                stack.append(_F64(buf, pos)[0])
                pos += 8
                cost += OBJ
            elif op == LONG1:
                n = buf[pos]
                data = bytes(buf[pos + 1:pos + 1 + n])
                if len(data) < n:
                    raise _Stop
                stack.append(int.from_bytes(data, 'little', signed=True))
                pos += 1 + n
                cost += OBJ + n
            elif op == EMPTY_LIST or op == EMPTY_DICT:
                stack.append(_Box('list' if op == EMPTY_LIST else 'dict', 0))
                cost += OBJ
            elif op == EMPTY_SET:
                stack.append(_Box('set', 0))
                cost += OBJ * 4
            elif op == APPEND or op == APPENDS:
                if op == APPEND:
                    items = [stack.pop()]
                else:
                    items = stack
                    stack = metastack.pop()
                target = stack[-1]
                if not isinstance(target, _Box) or target.kind in _NOT_LIST:
                    raise _Stop  # torch appends to lists only
                if target.items is None and not target.n:
                    target.items = []
                if isinstance(target.items, list):
                    target.items.extend(items)
                target.n = (target.n or 0) + len(items)
                cost += 2 * SLOT * len(items)
            elif op == SETITEM or op == SETITEMS:
                if op == SETITEM:
                    items = stack[-2:]
                    if len(items) < 2:
                        raise _Stop
                    del stack[-2:]
                else:
                    items = stack
                    stack = metastack.pop()
                target = stack[-1]
                if not isinstance(target, _Box) or \
                        target.kind not in ('dict', 'any'):
                    raise _Stop  # torch sets items of dicts only
                pairs = list(zip(items[0::2], items[1::2]))
                if target.items is None and not target.n:
                    target.items = []
                if isinstance(target.items, list):
                    target.items.extend(pairs)
                target.n = (target.n or 0) + len(pairs)
                cost += ENTRY * len(pairs)
            elif op == REDUCE or op == NEWOBJ:
                args = stack.pop()
                fn = stack[-1] if op == REDUCE else stack.pop()
                scan.pos, scan.cost = pos, cost
                if isinstance(fn, _G):
                    value, c, w = scan.call(fn, as_args(args, fn.name))
                else:  # torch refuses it, or an unknown callable
                    value, c, w = _Box('any'), OBJ * 2, None
                if op == REDUCE:
                    stack[-1] = value
                else:
                    stack.append(value)
                cost += c
                if c > biggest:
                    biggest, what = c, w
            elif op == BUILD:
                state = stack.pop()
                scan.pos, scan.cost = pos, cost
                c, w = scan.build(stack[-1], state)
                cost += c
                if c > biggest:
                    biggest, what = c, w
            elif op == GLOBAL:
                pos, g = scan.global_at(pos, end)
                stack.append(g)
                cost += SLOT
            elif op == BINPERSID:
                stack.append(scan.persistent(stack.pop()))
                cost += TENSOR
            elif op == PROTO:
                pos += 1
            elif op == STOP:
                stack.pop()
                scan.cost = cost
                return pos
            else:  # an opcode torch's weights-only unpickler refuses
                raise _Stop
            if pos > end:
                raise _Stop
            if cost > base + PICKLE_FACTOR * pos:
                raise ScanRefusal(
                    'budget', what or 'many small objects: containers, '
                    'strings, numbers', cost, pos - scan.start)
    except (IndexError, KeyError, struct.error):  # torch fails here too
        raise _Stop from None
