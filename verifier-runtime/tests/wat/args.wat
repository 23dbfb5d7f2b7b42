;; Writes each argument followed by a newline to stdout.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; argc at 0, buffer size at 4, pointers at 64, strings at 1024, iovec at 16.
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $scan
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $scan)))
    (local.get $n))
  (func (export "_start")
    (local $i i32) (local $p i32) (local $len i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $get (i32.const 64) (i32.const 1024)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
        (local.set $p (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
        ;; Replace the terminating NUL with a newline and write the string.
        (local.set $len (call $strlen (local.get $p)))
        (i32.store8 (i32.add (local.get $p) (local.get $len)) (i32.const 10))
        (i32.store (i32.const 16) (local.get $p))
        (i32.store (i32.const 20) (i32.add (local.get $len) (i32.const 1)))
        (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))))
