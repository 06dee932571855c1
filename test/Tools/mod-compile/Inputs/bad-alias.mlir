// A result declared to replace an argument of another type.
func.func @step(%p: tensor<4xf32> {mod.name = "p"}, %s: tensor<f32> {mod.name = "s"})
    -> (tensor<4xf32> {mod.name = "p", mod.aliases = 1 : i64}) {
  return %p : tensor<4xf32>
}
