"""panal in one screen: an embedded node, one database, the four operations,
and an error caught."""
import panal

with panal.Node() as node:                      # runs in background threads of this process
    node.start_server("mydb", max_value_bytes=1024)
    node.start_data("mydb", count=2)             # two data processes share the keys
    db = node.start_client("c1", "mydb")

    db.set("greeting", {"hello": "world", "n": [1, 2.5, None]})
    print("get:", db.get("greeting"))
    db.unsafe_set("counter", 1)                  # fire-and-forget, still ordered
    print("after unsafe_set:", db["counter"])
    print("remove:", db.remove("greeting"), "-> now", db.get("greeting", "gone"))

    try:
        db.set("big", b"x" * 4096)
    except panal.ValueTooLarge as e:
        print("caught:", type(e).__name__, "-", e)
