"""Request ids are unique in a forked child (a pre-forking server's worker) too."""

import os

from churnsaver.backend.core.middleware import request_id_of


def test_a_forked_child_makes_request_ids_of_its_own():
    request_id_of({})  # the parent's generator has state by the time it forks
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids to the parent, then gone without running anything of pytest's
        os.write(writer, " ".join(request_id_of({}) for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as from_child:
        child_ids = from_child.read().split()
    os.waitpid(pid, 0)
    parent_ids = [request_id_of({}) for _ in range(3)]

    assert len(child_ids) == 3
    assert len(set(child_ids + parent_ids)) == 6
    assert all(len(request_id) == 32 and int(request_id, 16) >= 0 for request_id in child_ids + parent_ids)
