"""Small compiled helpers for the kernels, each with a plain-Python version.

Numba compiles the ``overload`` of each function into the kernels; the pure-Python twins of the
kernels (``kernel.py_func``) call the Python definitions, so both give the same results.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic, overload

__all__ = ["ctz", "prefetch", "uidx"]


def ctz(word):
    """Index (0..63) of the lowest set bit of the non-zero uint64 ``word``."""
    w = int(word)
    return (w & -w).bit_length() - 1


@overload(ctz, inline="always")
def _ctz_numba(word):
    # compiled: one count-trailing-zeros instruction (LLVM cttz)
    return lambda word: trailing_zeros(word)


def uidx(i):
    """``i``, an array index known to be ``>= 0`` (Python: ``i`` itself).

    Compiled, the same bits as ``uint64``: Numba then leaves out the handling of negative indices
    (a sign test and an add) that it emits for every access with a signed index.  An index that
    is negative by mistake is not wrapped around but reads outside the array, so only indices
    that the code has just checked or built are passed through it.
    """
    return i


@overload(uidx, inline="always")
def _uidx_numba(i):
    return lambda i: np.uint64(i)


def prefetch(arr, i):
    """Hint that ``arr[i]`` will be read soon; no effect on results (Python: does nothing).

    Compiled, it is LLVM's ``prefetch`` (read, high locality) of the element's address, which
    never faults, even for an index outside the array.
    """


@intrinsic
def _prefetch_intrinsic(typingctx, arr, i):
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        rw, locality, data_cache = (ir.Constant(ir.IntType(32), c) for c in (0, 3, 1))
        builder.call(fn, [builder.bitcast(ptr, i8p), rw, locality, data_cache])
        return context.get_dummy_value()

    return sig, codegen


@overload(prefetch, inline="always")
def _prefetch_numba(arr, i):
    return lambda arr, i: _prefetch_intrinsic(arr, i)
