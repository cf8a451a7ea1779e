// The project's DataSource, as `typeorm migration:run -d data-source.js` loads it.
const path = require("path");
const { DataSource } = require("typeorm");

exports.AppDataSource = new DataSource({
  type: "postgres",
  url: process.env.DATABASE_URL,
  migrations: [path.join(__dirname, "migrations", "*.js")],
  logging: false,
});
