using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

/// <summary>Opening, pulling and pushing without blocking the caller, with cancellation.</summary>
public class AsyncTests
{
    [Fact]
    public async Task PushAsync_writes_and_a_cancelled_push_writes_nothing_and_keeps_the_lock()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using (var cs = await CompressedStorage.OpenAsync(path, StoreOptions.WritableLocked))
        {
            cs[1UL] = NdArray.Create(new long[] { 1, 2, 3 });
            await cs.PushAsync();
        }
        var before = File.ReadAllBytes(path);
        using (var cs = await CompressedStorage.OpenAsync(path, StoreOptions.WritableLocked))
        {
            cs[2UL] = NdArray.Create(new long[] { 4 });
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cs.PushAsync(ct: cancelled.Token));
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.True(cs.HoldsLock);
            await cs.PushAsync();
        }
        using var back = CompressedStorage.Open(path);
        Assert.Equal(2, back.Count);
        Assert.Equal([4L], back[2UL].ToArray<long>());
    }

    [Fact]
    public async Task OpenAsync_waits_for_a_lock_without_a_thread_and_gives_up_when_cancelled()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        using var holder = await AttributeDict.OpenAsync(path, StoreOptions.WritableLocked);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => AttributeDict.OpenAsync(path, StoreOptions.WritableLocked, cts.Token));
        Assert.True(holder.HoldsLock);
    }
}
