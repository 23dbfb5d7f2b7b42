;; Imports a host function from outside WASI.
(module
  (import "env" "read_secret" (func $secret (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $secret))))
