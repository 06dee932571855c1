"""Makes the hostile model directories of hostile-artifacts.test.

  edit.py tokens FILE [SHAPE]            an i32 safetensors file with 'tokens'
  edit.py shape MANIFEST inputs|outputs INDEX D0,D1,...
  edit.py truncate|flip LIBRARY          cut the file in half / flip one byte
  edit.py drop-digest MANIFEST           remove "library_sha256"
  edit.py set-digest MANIFEST VALUE      replace "library_sha256"
"""
import json
import struct
import sys

what, path = sys.argv[1], sys.argv[2]


def edit_manifest(change):
    with open(path) as f:
        manifest = json.load(f)
    change(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)


if what == "tokens":
    shape = [int(d) for d in (sys.argv[3] if len(sys.argv) > 3 else "4,2").split(",")]
    count = 1
    for d in shape:
        count *= d
    data = struct.pack("<%di" % count, *range(count))
    header = json.dumps({"tokens": {"dtype": "I32", "shape": shape,
                                    "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)
elif what == "shape":
    role, index = sys.argv[3], int(sys.argv[4])
    shape = [int(d) for d in sys.argv[5].split(",")]
    edit_manifest(lambda m: m["entry_points"][0][role][index].update(shape=shape))
elif what in ("truncate", "flip"):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if what == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x5A
    with open(path, "wb") as f:
        f.write(data)
elif what == "drop-digest":
    edit_manifest(lambda m: m.pop("library_sha256"))
elif what == "set-digest":
    edit_manifest(lambda m: m.update(library_sha256=sys.argv[3]))
else:
    sys.exit("unknown edit " + what)
