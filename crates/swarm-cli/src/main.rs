fn main() { println!("swarm: not yet"); }
