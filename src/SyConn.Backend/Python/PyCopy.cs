using System.Runtime.CompilerServices;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>Python's <c>copy.deepcopy</c> for the value model.</summary>
/// <remarks>Thread-safe (stateless); the value must not be modified while it is copied.</remarks>
public static class PyCopy
{
    /// <summary>
    /// A copy of <paramref name="value"/> that shares no mutable object with it: lists, dicts (defaultdict and
    /// OrderedDict included), sets, bytearrays and arrays (their bytes, or the elements of object arrays) are
    /// copied; tuples are rebuilt when they hold something that was copied. Immutable values (str, bytes, numbers,
    /// None, numpy scalars, dtypes, frozensets) are shared, as Python shares them. An object that occurs twice in
    /// <paramref name="value"/> occurs twice in the copy as one copied object, and a container that holds itself
    /// is copied into one that holds its copy (a tuple inside such a cycle too).
    /// </summary>
    /// <exception cref="InvalidOperationException">The value nests deeper than <see cref="MaxDepth"/> levels or than the call stack allows.</exception>
    public static object Deep(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return IsAtom(value) ? value : new Copier().Copy(value);
    }

    /// <summary>Nesting beyond which <see cref="Deep"/> gives up (three times the pickle reader's default limit).</summary>
    public const int MaxDepth = 3000;

    private static bool IsAtom(object v) => v is string or long or System.Numerics.BigInteger or double or bool or PyNone
        or PyBytes or NpScalar or DType or System.Numerics.Complex or PySet { IsFrozen: true };

    private sealed class Copier
    {
        private readonly Dictionary<object, object> _done = new(ReferenceEqualityComparer.Instance);

        private int _depth;

        public object Copy(object v)
        {
            if (IsAtom(v)) return v;
            if (_done.TryGetValue(v, out var seen)) return seen;
            if (_depth >= MaxDepth) throw new InvalidOperationException($"value nests deeper than {MaxDepth} levels; cannot copy it");
            if (_depth > 64 && !RuntimeHelpers.TryEnsureSufficientExecutionStack())
                throw new InvalidOperationException($"value nests too deeply for the call stack ({_depth} levels); cannot copy it");
            _depth++;
            try
            {
                return CopyContainer(v);
            }
            finally
            {
                _depth--;
            }
        }

        private object CopyContainer(object v)
        {
            object result;
            switch (v)
            {
                case PyList l:
                {
                    var c = new PyList(l.Count);
                    _done[v] = c;
                    foreach (var item in l) c.Add(Copy(item));
                    return c;
                }
                case PyDict d:
                {
                    var c = d switch
                    {
                        PyDefaultDict dd => new PyDefaultDict(dd.DefaultFactory),
                        PyOrderedDict => new PyOrderedDict(),
                        _ => new PyDict(d.Count),
                    };
                    _done[v] = c;
                    foreach (var kv in d) c[kv.Key] = Copy(kv.Value);
                    return c;
                }
                case PySet s:
                    result = new PySet(s, frozen: false); // members are hashable, hence immutable
                    break;
                case PyByteArray b:
                    result = new PyByteArray(b.Data.ToArray());
                    break;
                case PyTuple t:
                {
                    object[]? items = null;
                    for (int i = 0; i < t.Count; i++)
                    {
                        var c = Copy(t[i]);
                        if (items is null && !ReferenceEquals(c, t[i]))
                        {
                            items = new object[t.Count];
                            for (int j = 0; j < i; j++) items[j] = t[j];
                        }
                        if (items is not null) items[i] = c;
                    }
                    // A tuple inside a cycle was copied while its items were (through the list that holds it): that
                    // copy is the one the copied list holds, so it is the copy of this tuple too.
                    if (_done.TryGetValue(v, out var inner)) return inner;
                    result = items is null ? t : new PyTuple(items);
                    break;
                }
                case NdArray a when a.Objects is { } objects:
                {
                    // The copy exists before its elements are copied, so that an array holding itself holds its copy.
                    var items = new object?[objects.Count];
                    var c = NdArray.FromObjects(a.Shape, items);
                    _done[v] = c;
                    for (int i = 0; i < items.Length; i++) items[i] = objects[i] is { } o ? Copy(o) : null;
                    return c;
                }
                case NdArray a:
                    result = new NdArray(a.DType, a.Shape, a.Data.ToArray(), a.Order);
                    break;
                default:
                    result = v; // a type of the model without mutable state
                    break;
            }
            _done[v] = result;
            return result;
        }
    }
}
