"""The host's free memory is the least of MemAvailable and the headroom under the process's
memory cgroups, read from fake /proc and /sys/fs/cgroup trees."""

from sltlab.estimators.host_memory import cgroup_headroom, host_available_memory, meminfo_available

GIB = 2 ** 30


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_meminfo_is_read_in_bytes(tmp_path):
    meminfo = write(tmp_path / "meminfo", "MemTotal:       25000000 kB\nMemAvailable:   1000 kB\n")
    assert meminfo_available(meminfo) == 1_024_000
    assert meminfo_available(tmp_path / "absent") is None


def test_cgroup_v2_headroom_is_the_least_over_the_process_s_cgroup_and_its_ancestors(tmp_path):
    root = tmp_path / "cgroup"
    membership = write(tmp_path / "self_cgroup", "0::/jobs/mine\n")
    write(root / "jobs" / "memory.max", f"{4 * GIB}\n")
    write(root / "jobs" / "memory.current", f"{3 * GIB}\n")   # 1 GiB left for the whole group of jobs
    write(root / "jobs" / "memory.stat", "anon 1\ninactive_file 0\n")
    write(root / "jobs" / "mine" / "memory.max", f"{2 * GIB}\n")
    write(root / "jobs" / "mine" / "memory.current", f"{GIB}\n")
    write(root / "jobs" / "mine" / "memory.stat", f"inactive_file {GIB // 2}\n")   # 1.5 GiB left here
    assert cgroup_headroom(root, membership) == GIB
    write(root / "jobs" / "memory.max", "max\n")
    assert cgroup_headroom(root, membership) == GIB + GIB // 2


def test_cgroup_v1_limit_is_read_and_no_limit_is_none(tmp_path):
    root = tmp_path / "cgroup"
    membership = write(tmp_path / "self_cgroup", "5:cpu:/\n4:memory:/container\n0::/\n")
    write(root / "memory" / "container" / "memory.limit_in_bytes", f"{3 * GIB}\n")
    write(root / "memory" / "container" / "memory.usage_in_bytes", f"{GIB}\n")
    write(root / "memory" / "container" / "memory.stat", f"inactive_file 7\ntotal_inactive_file {GIB}\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_headroom(root, membership) == 3 * GIB
    write(root / "memory" / "container" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_headroom(root, membership) is None


def test_a_container_that_sees_its_cgroup_as_the_root_reads_the_root(tmp_path):
    root = tmp_path / "cgroup"
    membership = write(tmp_path / "self_cgroup", "0::/outside/path/not/mounted\n")
    write(root / "memory.max", f"{2 * GIB}\n")
    write(root / "memory.current", "0\n")
    assert cgroup_headroom(root, membership) == 2 * GIB


def test_the_host_reading_is_the_smaller_of_the_two(tmp_path):
    meminfo = write(tmp_path / "meminfo", f"MemAvailable:   {20 * GIB // 1024} kB\n")
    root, membership = tmp_path / "cgroup", write(tmp_path / "self_cgroup", "0::/\n")
    write(root / "memory.max", f"{2 * GIB}\n")
    write(root / "memory.current", "0\n")
    assert host_available_memory(meminfo, root, membership) == 2 * GIB
    write(root / "memory.max", "max\n")
    assert host_available_memory(meminfo, root, membership) == 20 * GIB
    assert host_available_memory(tmp_path / "absent", root, tmp_path / "absent") is None
